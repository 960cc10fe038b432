"""Axis and colour-bar titles in words with units, for the columns and metrics figures show (never a raw
column name where a reader expects words). Study metrics take theirs from ``modlens.analysis.METRICS_INFO``."""

from collections.abc import Sequence

from modlens.analysis.metrics import METRICS_INFO

# Task metrics (``modlens.tasks.METRICS``) and the patching metric.
METRIC_LABELS = {
    "loss": "loss on the answer tokens (nats/token)",
    "token_accuracy": "answer-token accuracy (fraction)",
    "answer_accuracy": "whole-answer accuracy (fraction)",
    "logit_diff": "logit difference, answer − best wrong token (logits)",
    "normalised_logit_diff": "normalised logit difference (0 = corrupted, 1 = clean)",
}
# Drift measures: ``run_weight_drift`` / ``run_activation_drift`` columns and the study's per-layer table.
DRIFT_LABELS = {
    "rel_change": "relative weight change ‖ΔW‖/‖W‖ (unitless)",
    "weight_rel_change": "relative weight change ‖ΔW‖/‖W‖ (unitless)",
    "cosine": "cosine similarity, base vs tuned (1 = unchanged)",
    "sv_share": "share of ‖ΔW‖² in singular values (fraction)",
    "angle_in": "mean principal angle, input subspace (degrees)",
    "angle_out": "mean principal angle, output subspace (degrees)",
    "cka_drift": "activation drift, 1 − linear CKA (unitless)",
    "linear_cka": "linear CKA, base vs tuned (1 = unchanged)",
    "debiased_cka": "debiased CKA, base vs tuned (1 = unchanged)",
    "drift": "drift (unitless)",
}
# Activation hooks of ``run_activation_drift``.
HOOK_LABELS = {
    "resid_post": "residual stream after the layer",
    "attn_out": "attention output",
    "mlp_out": "MLP output",
}
# Short names for legends and compact titles.
SHORT_NAMES = {
    "rel_change": "relative weight change",
    "weight_rel_change": "relative weight change",
    "cka_drift": "1 − linear CKA",
    "linear_cka": "linear CKA",
    "debiased_cka": "debiased CKA",
    "cosine": "cosine",
    "loss": "loss",
    "token_accuracy": "token accuracy",
    "answer_accuracy": "answer accuracy",
    "logit_diff": "logit difference",
    "normalised_logit_diff": "normalised logit difference",
}


def label(name: str) -> str:
    """The axis title for a column or metric: words with units; an unknown name is returned as it is."""
    if name in METRIC_LABELS:
        return METRIC_LABELS[name]
    if name in DRIFT_LABELS:
        return DRIFT_LABELS[name]
    if name in HOOK_LABELS:
        return HOOK_LABELS[name]
    if name in METRICS_INFO:
        return METRICS_INFO[name].label
    return name


def short_name(name: str) -> str:
    """A few words naming a column or metric (for titles and legends); unknown names have underscores spaced."""
    return SHORT_NAMES.get(name, name.replace("_", " "))


def change_label(metric: str) -> str:
    """The colour-bar title of a change in ``metric``: ``change in loss (nats/token)``."""
    text = label(metric)
    return f"change in {text}" if text != metric else f"change in {short_name(metric)}"


def group_label(columns: Sequence[str], key: Sequence[object]) -> str:
    """A study group in words, e.g. ``3 layers, corpus primitives, label noise 0``."""
    words = {"depth": "{} layers", "corpus": "corpus {}", "label_noise": "label noise {}"}
    parts = [words.get(c, c + " {}").format(_number(v)) for c, v in zip(columns, key, strict=True)]
    parts = ["1 layer" if p == "1 layers" else p for p in parts]
    return ", ".join(parts) or "all runs"


def _number(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)
