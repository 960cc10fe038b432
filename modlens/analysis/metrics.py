"""The registry of study metrics: a label with units, and which way is "more modular"."""

from typing import NamedTuple


class MetricInfo(NamedTuple):
    """How to read one metric.

    Attributes:
        label: axis label with units.
        direction: +1 if higher means more modular, -1 if lower means more modular, 0 if the metric is
            context (not a modularity measure).
    """

    label: str
    direction: int


METRICS_INFO: dict[str, MetricInfo] = {
    # Behaviour after fine-tuning.
    "heldout_composite_accuracy": MetricInfo("accuracy on unseen composite pairs (fraction)", +1),
    "primitive_retention": MetricInfo("primitive retention (accuracy after / before)", +1),
    "primitive_accuracy_after": MetricInfo("primitive accuracy after fine-tuning (fraction)", +1),
    "finetune_steps": MetricInfo("fine-tuning steps to target (steps)", 0),
    "reached_target": MetricInfo("reached accuracy target (fraction of units)", 0),
    "finetune_lr": MetricInfo("fine-tuning learning rate (chosen)", 0),
    "heldout_composite_accuracy_base": MetricInfo("base model accuracy on unseen composite pairs (fraction)", 0),
    "finetune_composite_accuracy": MetricInfo("accuracy on the fine-tuning composites (fraction)", 0),
    # Masks (Lepori; Csordás).
    "subnetwork_score": MetricInfo("subnetwork score (accuracy difference)", +1),
    "ablation_score": MetricInfo("ablation score (accuracy difference)", -1),
    "structural_compositionality": MetricInfo("structural compositionality (fraction of units)", +1),
    "mask_iou": MetricInfo("mask IoU between subroutines (fraction)", -1),
    "mask_iomin": MetricInfo("mask IoMin between subroutines (fraction)", -1),
    "mask_consistency": MetricInfo("mask IoU across mask seeds (fraction)", +1),
    "inheritance_precision": MetricInfo("inheritance precision |C_base ∩ C_tuned| / |C_base|", +1),
    "inheritance_recall": MetricInfo("inheritance recall |C_base ∩ C_tuned| / |C_tuned|", +1),
    # Context for the masks: how sparse they are and how much of the task the circuit carries alone.
    "mask_density": MetricInfo("mask density (fraction of units kept)", 0),
    "faithfulness": MetricInfo("circuit faithfulness (accuracy ratio)", 0),
    "faithfulness_random": MetricInfo("random-circuit faithfulness (accuracy ratio)", 0),
    # Drift between base and fine-tuned model.
    "weight_drift_upper_share": MetricInfo("share of weight drift in upper half (fraction)", +1),
    "weight_drift_mean_depth": MetricInfo("weight-drift mean depth (0 = first layer, 1 = last)", +1),
    "cka_drift_upper_share": MetricInfo("share of CKA drift in upper half (fraction)", +1),
    "cka_drift_mean_depth": MetricInfo("CKA-drift mean depth (0 = first layer, 1 = last)", +1),
    "disentanglement_error": MetricInfo("weight disentanglement error (fraction of inputs)", -1),
}


def metric_info(name: str) -> MetricInfo:
    """The registry entry of ``name``; an unknown metric is still analysed, as context (direction 0)."""
    return METRICS_INFO.get(name, MetricInfo(name, 0))
