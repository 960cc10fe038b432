"""Modularity metrics built on masks: specialization, the faithfulness gate, overlaps against chance, reuse,
consistency, inheritance, disentanglement."""

from modlens.modularity.disentanglement import weight_disentanglement
from modlens.modularity.expected import (
    expected_intersection,
    expected_iomin,
    expected_iou,
    expected_precision,
    expected_recall,
    overlap_excess,
)
from modlens.modularity.gate import Faithfulness, check_faithfulness
from modlens.modularity.overlap import circuit_overlap, compositionality_rate, mask_consistency
from modlens.modularity.reuse import reuse_specificity, run_reuse, specific_part
from modlens.modularity.run import ModularityResult, run_modularity
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
    "Faithfulness",
    "ModularityResult",
    "ablation_score",
    "chance_for",
    "check_faithfulness",
    "circuit_overlap",
    "compositionality_rate",
    "expected_intersection",
    "expected_iomin",
    "expected_iou",
    "expected_precision",
    "expected_recall",
    "faithfulness",
    "inverse_mask_drops",
    "lepori_score",
    "mask_consistency",
    "masked_accuracy",
    "overlap_excess",
    "reuse_specificity",
    "run_modularity",
    "run_reuse",
    "specific_part",
    "subnetwork_score",
    "weight_disentanglement",
]
