"""Overlap of masks: reuse (IoU/IoMin), consistency across seeds, inheritance from base to fine-tuned model."""

import itertools
from collections.abc import Sequence

import pandas as pd

from modlens.masks.mask import Mask, iomin, iou


def circuit_overlap(base: Mask, tuned: Mask) -> dict[str, float]:
    """How much of the fine-tuned circuit pretraining built (Prakash et al. 2024).

    Returns:
        ``precision = |base ∩ tuned| / |base|``, ``recall = |base ∩ tuned| / |tuned|`` (as RESEARCH.md §2
        defines them), ``iou`` and ``iomin``; NaN where a denominator is 0.
    """
    inter = (base & tuned).size
    return {
        "precision": inter / base.size if base.size else float("nan"),
        "recall": inter / tuned.size if tuned.size else float("nan"),
        "iou": iou(base, tuned),
        "iomin": iomin(base, tuned),
    }


def mask_consistency(masks: Sequence[Mask]) -> float:
    """Mean pairwise IoU of masks of one subroutine fitted with different seeds (1 = always the same mask)."""
    pairs = [iou(a, b) for a, b in itertools.combinations(masks, 2)]
    return float(pd.Series(pairs, dtype=float).mean()) if pairs else float("nan")


def compositionality_rate(scores: pd.DataFrame) -> float:
    """Fraction of runs showing structural compositionality: subnetwork score > 0 and ablation score < 0.

    Args:
        scores: one row per run (model seed × mask seed) with ``subnetwork_score`` and ``ablation_score``.
    """
    if scores.empty:
        return float("nan")
    holds = (scores["subnetwork_score"] > 0) & (scores["ablation_score"] < 0)
    return float(holds.mean())
