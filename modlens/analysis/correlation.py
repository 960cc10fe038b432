"""Rank correlation between pretraining loss and each metric, with a cluster bootstrap over seeds.

Sign convention: pretraining loss falls as pretraining improves, so ρ(loss, metric) < 0 means the metric
rises with better pretraining.
"""

import numpy as np
import pandas as pd

from modlens.analysis.bootstrap import check_boot, percentile_interval, rng_for, seed_counts
from modlens.analysis.metrics import metric_info
from modlens.analysis.units import CONTROL_STEP, group_columns, scope_name, unit_values

MIN_UNITS = 3  # two points always have ρ = ±1: a rank correlation needs at least three
POOLED = "pooled"


def weighted_spearman(x: np.ndarray, y: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Spearman's ρ of the samples that repeat point ``i`` ``weights[b, i]`` times, for each row ``b``.

    Ranks are mid-ranks (ties share their average rank), as in ``scipy.stats.spearmanr``. NaN where either
    variable is constant within a resample.

    Args:
        x, y: ``(n,)`` paired observations.
        weights: ``(b, n)`` non-negative integer frequencies.
    """
    rx, ry = _midranks(x, weights), _midranks(y, weights)
    total = weights.sum(axis=1, keepdims=True)
    safe = np.where(total > 0, total, 1)
    dx = rx - (weights * rx).sum(axis=1, keepdims=True) / safe
    dy = ry - (weights * ry).sum(axis=1, keepdims=True) / safe
    cov, vx, vy = ((weights * a * b).sum(axis=1) for a, b in ((dx, dy), (dx, dx), (dy, dy)))
    # Ranks are multiples of 1/2, so a constant variable has a variance of exactly 0 up to rounding.
    defined = (vx > 1e-9) & (vy > 1e-9)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(defined, cov / np.sqrt(np.where(defined, vx * vy, 1.0)), np.nan)


def _midranks(x: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``(b, n)``: the mid-rank of each point's value within each weighted sample."""
    unique, inverse = np.unique(x, return_inverse=True)
    onehot = (inverse[:, None] == np.arange(unique.size)[None, :]).astype(float)
    per_value = weights @ onehot  # (b, n_unique) how often each distinct value occurs
    below = np.cumsum(per_value, axis=1) - per_value
    return (below + (per_value + 1) / 2)[:, inverse]


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's ρ with mid-ranks; NaN if either variable is constant."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    return float(weighted_spearman(x, y, np.ones((1, x.size)))[0])


def rank_correlations(
    frame: pd.DataFrame,
    *,
    n_boot: int = 2000,
    ci: float = 0.95,
    seed: int = 0,
    include_random_init: bool = False,
) -> pd.DataFrame:
    """Spearman ρ(pretraining loss, metric) across units, per group and pooled, with a seed-cluster bootstrap.

    Each unit contributes one point (its base checkpoint's held-out loss, its metric averaged over
    subroutines). A resample draws seeds with replacement and keeps all units of each drawn seed.

    Args:
        frame: the study frame.
        n_boot: bootstrap resamples.
        ci: interval coverage.
        seed: seed of the resampling.
        include_random_init: also correlate over step-0 units; by default they are left to the control
            (``random_init_control``), so ρ measures graded pretraining quality among pretrained models.

    Returns:
        One row per metric and scope (``"pooled"`` first, then each group): ``metric``, ``label``,
        ``direction``, ``scope``, the group columns (NaN when pooled), ``n_units``, ``n_seeds``, ``rho``,
        ``ci_low``, ``ci_high``, ``better_pretraining`` (``"higher"`` / ``"lower"`` / ``"no change"`` / ``""``:
        how the metric moves as loss falls, by the point estimate), ``excludes_zero``, ``note``
        (``""``, ``"one seed"``, ``"too few units"``, ``"constant"`` or ``"interval undefined"``), ``ci``.
    """
    check_boot(n_boot, ci)
    groups = group_columns(frame)
    units = unit_values(frame)
    if not include_random_init:
        units = units[units["step"] != CONTROL_STEP]
    rows = []
    for metric, part in units.groupby("metric", sort=True):
        info = metric_info(str(metric))
        base = {"metric": metric, "label": info.label, "direction": info.direction}
        rows.append(base | {"scope": POOLED} | _correlate(part, n_boot, ci, seed, (metric, POOLED)))
        for key, sub in part.groupby(groups, sort=True) if groups else ():
            name = scope_name(groups, key)
            coords = dict(zip(groups, key, strict=True))
            rows.append(base | {"scope": name} | coords | _correlate(sub, n_boot, ci, seed, (metric, name)))
    columns = ["metric", "label", "direction", "scope", *groups, "n_units", "n_seeds", "rho", "ci_low", "ci_high"]
    return pd.DataFrame(rows, columns=[*columns, "better_pretraining", "excludes_zero", "note", "ci"])


def _correlate(units: pd.DataFrame, n_boot: int, ci: float, seed: int, key: tuple[object, ...]) -> dict:
    x = units["pretrain_loss"].to_numpy(dtype=float)
    y = units["value"].to_numpy(dtype=float)
    seeds, seed_index = np.unique(units["seed"].to_numpy(), return_inverse=True)
    out: dict[str, object] = {"n_units": len(units), "n_seeds": seeds.size, "ci": ci}
    rho, low, high, note = float("nan"), float("nan"), float("nan"), ""
    if len(units) < MIN_UNITS:
        note = "too few units"
    else:
        rho = spearman(x, y)
        if not np.isfinite(rho):
            note = "constant"
        elif seeds.size < 2:
            note = "one seed"
        else:
            counts = seed_counts(seeds.size, n_boot, rng_for(seed, "rho", *key))
            low, high = percentile_interval(weighted_spearman(x, y, counts[:, seed_index]), ci)
            note = "" if np.isfinite(low) else "interval undefined"
    moves = "" if not np.isfinite(rho) else "higher" if rho < 0 else "lower" if rho > 0 else "no change"
    excludes = bool(np.isfinite(low) and (low > 0 or high < 0))
    return out | {
        "rho": rho,
        "ci_low": low,
        "ci_high": high,
        "better_pretraining": moves,
        "excludes_zero": excludes,
        "note": note,
    }
