"""Modularity metrics built on masks: specialization, reuse, consistency, inheritance, disentanglement."""

from modlens.modularity.disentanglement import weight_disentanglement
from modlens.modularity.overlap import circuit_overlap, compositionality_rate, mask_consistency
from modlens.modularity.run import run_modularity
from modlens.modularity.scores import (
    ablation_score,
    chance_for,
    faithfulness,
    inverse_mask_drops,
    lepori_score,
    masked_accuracy,
    subnetwork_score,
)

__all__ = [
    "ablation_score",
    "chance_for",
    "circuit_overlap",
    "compositionality_rate",
    "faithfulness",
    "inverse_mask_drops",
    "lepori_score",
    "mask_consistency",
    "masked_accuracy",
    "run_modularity",
    "subnetwork_score",
    "weight_disentanglement",
]
