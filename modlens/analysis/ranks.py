"""Rank correlation within groups, computed for many studies at once.

Arrays are ``(studies, units)``: the frame analysis passes one study, the calibration thousands, through
the same code. Ranks are mid-ranks (ties share their average rank), as in ``scipy.stats.spearmanr``.
"""

from dataclasses import dataclass

import numpy as np

MIN_UNITS = 3  # two points always have ρ = ±1: a rank correlation needs at least three


def midranks(values: np.ndarray) -> np.ndarray:
    """The mid-rank (1-based) of each value along the last axis; ties share their average rank."""
    v = np.asarray(values, dtype=float)
    order = np.argsort(v, axis=-1, kind="stable")
    s = np.take_along_axis(v, order, axis=-1)
    n = v.shape[-1]
    index = np.broadcast_to(np.arange(n), v.shape)
    differs = s[..., 1:] != s[..., :-1]
    first = np.concatenate([np.ones((*v.shape[:-1], 1), dtype=bool), differs], axis=-1)
    last = np.concatenate([differs, np.ones((*v.shape[:-1], 1), dtype=bool)], axis=-1)
    start = np.maximum.accumulate(np.where(first, index, 0), axis=-1)
    end = np.flip(np.minimum.accumulate(np.flip(np.where(last, index, n - 1), axis=-1), axis=-1), axis=-1)
    ranks = np.empty_like(v)
    np.put_along_axis(ranks, order, (start + end) / 2 + 1, axis=-1)
    return ranks


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's ρ with mid-ranks; NaN if either variable is constant or there are fewer than two points."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.size < 2:
        return float("nan")
    rx, ry = midranks(x) - (x.size + 1) / 2, midranks(y) - (y.size + 1) / 2
    vx, vy = float(rx @ rx), float(ry @ ry)
    # Ranks are multiples of 1/2, so a constant variable has a variance of exactly 0 up to rounding.
    return float(rx @ ry / np.sqrt(vx * vy)) if vx > 1e-9 and vy > 1e-9 else float("nan")


@dataclass(frozen=True)
class WithinGroupRho:
    """The within-group rank correlation of many studies, and its linear form in the value ranks.

    ``estimate = Σ_i coef[:, i] · yrank[:, i]``: the unit-weighted mean of the defined groups' ρ. A
    permutation of values inside groups permutes ``yrank`` and leaves ``coef`` alone, which is what makes
    the permutation tests cheap.

    Attributes:
        estimate: ``(studies,)``, NaN where no group has a defined ρ.
        per_group: ``(studies, groups)`` each group's ρ (NaN: fewer than ``MIN_UNITS`` units or constant).
        coef: ``(studies, units)`` centred loss ranks over each group's norm, times the group's weight.
        yrank: ``(studies, units)`` value mid-ranks centred within their group.
        groups: ``(groups,)`` the group labels, in the order of ``per_group``.
    """

    estimate: np.ndarray
    per_group: np.ndarray
    coef: np.ndarray
    yrank: np.ndarray
    groups: np.ndarray


def within_group_rho(x: np.ndarray, y: np.ndarray, group: np.ndarray) -> WithinGroupRho:
    """Spearman ρ(x, y) inside each group, averaged over groups weighted by their number of units.

    Args:
        x: ``(studies, units)`` or ``(units,)`` pretraining loss.
        y: same shape, the metric.
        group: ``(units,)`` group label of each unit.
    """
    x, y = np.atleast_2d(np.asarray(x, dtype=float)), np.atleast_2d(np.asarray(y, dtype=float))
    labels = np.unique(group)
    studies = x.shape[0]
    per_group = np.full((studies, labels.size), np.nan)
    weight = np.zeros((studies, labels.size))
    coef, yrank = np.zeros_like(x), np.zeros_like(y)
    for g, label in enumerate(labels):
        idx = np.flatnonzero(group == label)
        rx, ry = midranks(x[:, idx]), midranks(y[:, idx])
        rx -= (idx.size + 1) / 2
        ry -= (idx.size + 1) / 2
        vx, vy = (rx * rx).sum(axis=1), (ry * ry).sum(axis=1)
        defined = (vx > 1e-9) & (vy > 1e-9) & (idx.size >= MIN_UNITS)
        norm = np.sqrt(np.where(defined, vx * vy, 1.0))
        per_group[:, g] = np.where(defined, (rx * ry).sum(axis=1) / norm, np.nan)
        weight[:, g] = defined * idx.size
        coef[:, idx] = np.where(defined[:, None], rx / norm[:, None], 0.0) * idx.size
        yrank[:, idx] = ry
    total = weight.sum(axis=1)
    safe = np.where(total > 0, total, 1.0)
    coef /= safe[:, None]
    estimate = np.where(total > 0, (coef * yrank).sum(axis=1), np.nan)
    return WithinGroupRho(estimate=estimate, per_group=per_group, coef=coef, yrank=yrank, groups=labels)
