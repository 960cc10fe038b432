"""Activation patching between clean and corrupted prompts: pairs, the normalised metric, sweeps."""

from modlens.patching.metric import NormalisedLogitDiff, logit_differences, patching_metric
from modlens.patching.pairs import PatchingBatch, encode_pairs, load_patching_batch
from modlens.patching.sweep import (
    DIRECTIONS,
    Direction,
    Positions,
    patch_sites,
    run_attribution_patching_pairs,
    run_patching_loop,
    run_patching_sweep,
)

__all__ = [
    "DIRECTIONS",
    "Direction",
    "NormalisedLogitDiff",
    "PatchingBatch",
    "Positions",
    "encode_pairs",
    "load_patching_batch",
    "logit_differences",
    "patch_sites",
    "patching_metric",
    "run_attribution_patching_pairs",
    "run_patching_loop",
    "run_patching_sweep",
]
