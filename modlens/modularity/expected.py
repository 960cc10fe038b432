"""What overlaps of masks are expected by chance: random masks with the same number of units per group.

Two independent random masks with ``a`` and ``b`` of ``n`` units share a hypergeometric number of units
(mean ``a b / n``), so IoU, IoMin and inheritance precision grow with density alone. Reported overlaps subtract
these expectations (RESEARCH.md §5). The groups are ``modlens.masks.mask.unit_groups`` (each layer's heads,
each layer's neurons, each weight matrix), the groups ``Mask.random_like`` keeps the counts of. With the sizes
``|A|`` and ``|B|`` fixed, precision, recall and IoMin are the intersection over a constant, so their
expectations are exact; IoU divides by the union ``|A| + |B| - |A ∧ B|``, and its expectation is computed
exactly too, from the intersection's distribution (the convolution of the groups' hypergeometrics).
"""

import math

import numpy as np
import torch

from modlens.masks.mask import Mask, iomin, iou, unit_groups


def _group_counts(a: Mask, b: Mask) -> list[tuple[int, int, int]]:
    """``(a_g, b_g, n_g)`` for every group: kept units of each mask and the group's size."""
    a._check_same(b)
    groups_a, groups_b = unit_groups(a), unit_groups(b)
    out: list[tuple[int, int, int]] = []
    for key, ga in groups_a.items():
        gb = groups_b[key]
        out += zip(ga.sum(1).tolist(), gb.sum(1).tolist(), [ga.shape[1]] * ga.shape[0], strict=True)
    return out


def expected_intersection(a: Mask, b: Mask) -> float:
    """``E|A ∧ B|`` for independent random masks of the same per-group sizes: ``Σ_g a_g b_g / n_g``."""
    return sum(x * y / n for x, y, n in _group_counts(a, b) if n)


def expected_precision(a: Mask, b: Mask) -> float:
    """``E[|A ∧ B| / |A|]``: inheritance precision's chance level with ``a`` the base mask (NaN if empty)."""
    return expected_intersection(a, b) / a.size if a.size else float("nan")


def expected_recall(a: Mask, b: Mask) -> float:
    """``E[|A ∧ B| / |B|]``: inheritance recall's chance level with ``b`` the tuned mask (NaN if empty)."""
    return expected_intersection(a, b) / b.size if b.size else float("nan")


def expected_iomin(a: Mask, b: Mask) -> float:
    """``E[|A ∧ B| / min(|A|, |B|)]``; NaN when either mask is empty."""
    smaller = min(a.size, b.size)
    return expected_intersection(a, b) / smaller if smaller else float("nan")


def expected_iou(a: Mask, b: Mask) -> float:
    """``E[|A ∧ B| / |A ∨ B|]``, exact: the intersection's distribution convolved over groups.

    Each group's hypergeometric is kept only where its probability is not negligible (12 standard
    deviations either side of its mean), so large weight masks stay cheap. NaN when both masks are empty.
    """
    if a.size + b.size == 0:
        return float("nan")
    pmf, start = np.ones(1), 0
    for x, y, n in _group_counts(a, b):
        lo, p = _hypergeometric(x, y, n)
        pmf, start = np.convolve(pmf, p), start + lo
    inter = start + np.arange(pmf.size)
    union = a.size + b.size - inter
    return float(np.sum(pmf * inter / union))


def _hypergeometric(a: int, b: int, n: int) -> tuple[int, np.ndarray]:
    """``(k0, p)``: ``p[i] = P(k0 + i shared units)`` when ``b`` of ``n`` units are drawn and ``a`` marked."""
    k_min, k_max = max(0, a + b - n), min(a, b)
    if n <= 1 or k_min == k_max:
        return k_min, np.ones(1)
    mean = a * b / n
    sd = math.sqrt(mean * (1 - a / n) * (n - b) / (n - 1))
    lo, hi = max(k_min, math.floor(mean - 12 * sd) - 1), min(k_max, math.ceil(mean + 12 * sd) + 1)
    k = torch.arange(lo, hi + 1, dtype=torch.float64)

    def log_choose(top: int, bottom: torch.Tensor) -> torch.Tensor:
        t = torch.tensor(top, dtype=torch.float64)
        return torch.lgamma(t + 1) - torch.lgamma(bottom + 1) - torch.lgamma(t - bottom + 1)

    log_p = log_choose(a, k) + log_choose(n - a, b - k)
    p = torch.exp(log_p - log_p.max())
    return lo, (p / p.sum()).numpy()


def overlap_excess(base: Mask, tuned: Mask) -> dict[str, float]:
    """Overlaps of two masks minus their expectation for random masks of the same per-group sizes.

    Returns:
        ``precision`` (``|A ∧ B| / |A|``), ``recall`` (``/ |B|``), ``iou`` and ``iomin``, each minus its
        chance level: 0 means no more overlap than density alone gives, positive means shared units.
        NaN where a denominator is 0.
    """
    inter = (base & tuned).size
    nan = float("nan")
    return {
        "precision": inter / base.size - expected_precision(base, tuned) if base.size else nan,
        "recall": inter / tuned.size - expected_recall(base, tuned) if tuned.size else nan,
        "iou": iou(base, tuned) - expected_iou(base, tuned),
        "iomin": iomin(base, tuned) - expected_iomin(base, tuned),
    }
