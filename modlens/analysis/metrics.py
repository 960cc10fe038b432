"""The registry of study metrics: a label with units, and which way is "more modular"."""

from typing import NamedTuple

from modlens.names import FIXED_BUDGET


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
    # Behaviour after fine-tuning (stop-at-target arm).
    "heldout_composite_accuracy": MetricInfo("accuracy on unseen composite pairs (fraction)", +1),
    "primitive_retention": MetricInfo("primitive retention (accuracy after / before)", +1),
    "primitive_accuracy_after": MetricInfo("primitive accuracy after fine-tuning (fraction)", +1),
    "finetune_composite_accuracy": MetricInfo("accuracy on the fine-tuning composites (fraction)", 0),
    "finetune_steps": MetricInfo("fine-tuning steps to target (steps)", 0),
    "reached_target": MetricInfo("reached accuracy target (fraction of units)", 0),
    "finetune_lr": MetricInfo("fine-tuning learning rate (chosen)", 0),
    "heldout_composite_accuracy_base": MetricInfo("base model accuracy on unseen composite pairs (fraction)", 0),
    # Behaviour when the fine-tuning tasks are prompt files (a family file's finetune and heldout_prompts): the
    # held-out prompts, never trained on, measure reuse as the unseen composite pairs do. Their loss is context:
    # a second direction for one measurement would count it twice in any tally.
    "heldout_prompt_accuracy": MetricInfo("accuracy on held-out prompts (fraction)", +1),
    "heldout_prompt_loss": MetricInfo("answer loss on held-out prompts (nats)", 0),
    "heldout_prompt_accuracy_base": MetricInfo("base model accuracy on held-out prompts (fraction)", 0),
    "heldout_prompt_loss_base": MetricInfo("base model answer loss on held-out prompts (nats)", 0),
    "finetune_prompt_accuracy": MetricInfo("accuracy on the fine-tuning prompts' validation split (fraction)", 0),
    "finetune_prompt_loss": MetricInfo("answer loss on the fine-tuning prompts' validation split (nats)", 0),
    "finetune_prompt_accuracy_base": MetricInfo("base model accuracy on the fine-tuning prompts (fraction)", 0),
    "finetune_prompt_loss_base": MetricInfo("base model answer loss on the fine-tuning prompts (nats)", 0),
    # Masks on the prompt task (the tuned model's, and the base's it may inherit)
    "prompt_mask_density": MetricInfo("share of components in the prompt task's gated masks", 0),
    "prompt_mask_faithfulness": MetricInfo("accuracy kept by the prompt task's masks (fraction)", 0),
    "prompt_mask_rejection_rate": MetricInfo("share of prompt-task masks failing the faithfulness gate", 0),
    "prompt_mask_consistency": MetricInfo("prompt-task mask IoU across mask seeds (fraction)", +1),
    "prompt_mask_inheritance_iou_excess": MetricInfo("IoU of base and tuned prompt-task masks minus chance", +1),
    # Reuse (Csordás et al.'s P_reuse; Lepori et al.'s structural compositionality on the composite task).
    "reuse_specificity": MetricInfo("reuse specificity (accuracy drop with f minus without f)", +1),
    "reuse_specificity_tuned_mask": MetricInfo("reuse specificity, tuned-model mask (accuracy drop difference)", +1),
    "structural_compositionality": MetricInfo("structural compositionality (fraction of units)", +1),
    # Masks: scores, and overlaps minus their expectation for random masks of the same densities.
    "subnetwork_score": MetricInfo("subnetwork score (accuracy difference)", +1),
    "ablation_score": MetricInfo("ablation score (accuracy difference)", -1),
    "mask_iou_excess": MetricInfo("mask IoU between subroutines minus random-mask IoU", -1),
    "mask_iomin_excess": MetricInfo("mask IoMin between subroutines minus random-mask IoMin", -1),
    "mask_consistency": MetricInfo("mask IoU across mask seeds (fraction)", +1),
    "inheritance_precision_excess": MetricInfo("inheritance precision minus its random-mask expectation", +1),
    "inheritance_recall_excess": MetricInfo("inheritance recall minus its random-mask expectation", +1),
    # Context for the masks: how many were rejected, how sparse they are, how much of the task they carry.
    "mask_rejection_rate": MetricInfo("masks rejected as unfaithful (fraction)", 0),
    "faithfulness": MetricInfo("circuit faithfulness (accuracy ratio)", 0),
    "faithfulness_random": MetricInfo("random-circuit faithfulness (accuracy ratio)", 0),
    "mask_density": MetricInfo("mask density (fraction of units kept)", 0),
    # Drift between base and fine-tuned model. (The mean depth of drift is not listed: at the depths
    # studied it equals the upper-half share, so it would count one number twice.)
    "weight_drift_upper_share": MetricInfo("share of weight drift in upper half (fraction)", +1),
    "cka_drift_upper_share": MetricInfo("share of CKA drift in upper half (fraction)", +1),
    "disentanglement_error": MetricInfo("weight disentanglement error (fraction of inputs)", -1),
}


def metric_info(name: str) -> MetricInfo:
    """The registry entry of ``name``.

    A fixed-budget copy (``<metric>_fixed_budget``) reads like its metric, labelled as such. An unknown
    metric is still analysed, as context (direction 0).
    """
    if name in METRICS_INFO:
        return METRICS_INFO[name]
    if name.endswith(FIXED_BUDGET) and name[: -len(FIXED_BUDGET)] in METRICS_INFO:
        base = METRICS_INFO[name[: -len(FIXED_BUDGET)]]
        return MetricInfo(f"{base.label}, fixed budget", base.direction)
    return MetricInfo(name, 0)
