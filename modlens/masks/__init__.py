"""Learned masks: the sparse subnetwork of a frozen model that computes a subroutine."""

from modlens.masks.apply import (
    Keep,
    MeanBaseline,
    Reference,
    masked,
    masked_logits,
    masked_scores,
    mean_activations,
    mean_baseline,
)
from modlens.masks.chance import at_chance, chance_accuracy, chance_margin
from modlens.masks.continuous_sparsification import ContinuousSparsification
from modlens.masks.fit import ALGORITHMS, Algorithm, fit_mask
from modlens.masks.hard_concrete import HardConcrete
from modlens.masks.io import load_mask, save_mask
from modlens.masks.mask import GRANULARITIES, Granularity, Mask, MaskError, iomin, iou, pairwise_overlap, unit_groups

__all__ = [
    "ALGORITHMS",
    "GRANULARITIES",
    "Algorithm",
    "ContinuousSparsification",
    "Granularity",
    "HardConcrete",
    "Keep",
    "Mask",
    "MaskError",
    "MeanBaseline",
    "Reference",
    "at_chance",
    "chance_accuracy",
    "chance_margin",
    "fit_mask",
    "iomin",
    "iou",
    "load_mask",
    "masked",
    "masked_logits",
    "masked_scores",
    "mean_activations",
    "mean_baseline",
    "pairwise_overlap",
    "save_mask",
    "unit_groups",
]
