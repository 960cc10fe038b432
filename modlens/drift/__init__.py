"""Drift between a base and a fine-tuned model: weights, spectra, activations (CKA family), depth summaries."""

from modlens.drift.activations import HOOKS, MEASURES, check_tokenizers, run_activation_drift
from modlens.drift.cka import (
    MinibatchCKA,
    center_gram,
    cka_from_grams,
    debiased_cka,
    gram_linear,
    gram_rbf,
    linear_cka,
    minibatch_cka,
    rbf_cka,
)
from modlens.drift.spectra import SpectralSplit, principal_angles, spectral_split
from modlens.drift.summary import (
    activation_drift_by_layer,
    depth_summary,
    layer_depth,
    summarize_activation_drift,
    summarize_weight_drift,
    weight_drift_by_layer,
)
from modlens.drift.weights import run_weight_drift

__all__ = [
    "HOOKS",
    "MEASURES",
    "MinibatchCKA",
    "SpectralSplit",
    "activation_drift_by_layer",
    "center_gram",
    "check_tokenizers",
    "cka_from_grams",
    "debiased_cka",
    "depth_summary",
    "gram_linear",
    "gram_rbf",
    "layer_depth",
    "linear_cka",
    "minibatch_cka",
    "principal_angles",
    "rbf_cka",
    "run_activation_drift",
    "run_weight_drift",
    "spectral_split",
    "summarize_activation_drift",
    "summarize_weight_drift",
    "weight_drift_by_layer",
]
