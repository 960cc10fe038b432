"""Learned masks: the sparse subnetwork of a frozen model that computes a subroutine."""

from modlens.masks.apply import REPLACEMENTS, Keep, Replacement, masked, masked_logits, mean_activations
from modlens.masks.chance import chance_accuracy
from modlens.masks.continuous_sparsification import ContinuousSparsification
from modlens.masks.fit import METHODS, fit_mask
from modlens.masks.hard_concrete import HardConcrete
from modlens.masks.io import load_mask, save_mask
from modlens.masks.mask import GRANULARITIES, Granularity, Mask, MaskError, iomin, iou, pairwise_overlap

__all__ = [
    "GRANULARITIES",
    "METHODS",
    "REPLACEMENTS",
    "ContinuousSparsification",
    "Granularity",
    "HardConcrete",
    "Keep",
    "Mask",
    "MaskError",
    "Replacement",
    "chance_accuracy",
    "fit_mask",
    "iomin",
    "iou",
    "load_mask",
    "masked",
    "masked_logits",
    "mean_activations",
    "pairwise_overlap",
    "save_mask",
]
