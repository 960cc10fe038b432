"""Bootstrap over seeds: resampling counts, percentile intervals, and the per-level summary with intervals.

Seeds are resampled with replacement as clusters. A resample is a vector of counts per seed, so any
statistic of the resampled data is a weighted statistic of the original data (no data is copied).
"""

import warnings
import zlib

import numpy as np
import pandas as pd

from modlens.analysis.metrics import metric_info
from modlens.analysis.units import group_columns, seed_values, unit_values
from modlens.errors import ConfigError


def rng_for(seed: int, *key: object) -> np.random.Generator:
    """A generator determined by ``seed`` and ``key`` alone, so one result's interval does not depend on
    which other metrics or groups were analysed in the same call."""
    return np.random.default_rng(np.random.SeedSequence([seed, zlib.crc32(repr(key).encode())]))


def seed_counts(n_seeds: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """``(n_boot, n_seeds)`` counts: how often each seed is drawn in each resample of ``n_seeds`` seeds."""
    return rng.multinomial(n_seeds, np.full(n_seeds, 1.0 / n_seeds), size=n_boot).astype(float)


def percentile_interval(replicates: np.ndarray, ci: float) -> tuple[float, float]:
    """The percentile interval of the finite replicates; NaN if fewer than half of them are finite
    (then the statistic is mostly undefined under resampling and no interval is honest)."""
    finite = replicates[np.isfinite(replicates)]
    if finite.size == 0 or finite.size < 0.5 * replicates.size:
        return float("nan"), float("nan")
    tail = 100 * (1 - ci) / 2
    low, high = np.percentile(finite, [tail, 100 - tail])
    return float(low), float(high)


def weighted_means(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Per-resample means of ``values`` (one per seed) under ``counts`` (resamples × seeds); NaN where a
    resample drew none of these seeds."""
    total = counts.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, counts @ values / np.where(total > 0, total, 1), np.nan)


def summarize_levels(frame: pd.DataFrame, *, n_boot: int = 2000, ci: float = 0.95, seed: int = 0) -> pd.DataFrame:
    """Each metric at each level: the mean over seeds with a bootstrap interval over seeds.

    Subroutines are averaged within a unit first, then units within a (level, seed), then seeds.

    Args:
        frame: the study frame (see ``modlens.analysis``).
        n_boot: bootstrap resamples.
        ci: interval coverage (0.95: percentile 2.5 to 97.5).
        seed: seed of the resampling.

    Returns:
        One row per metric and level: ``metric``, ``label``, ``direction``, the group columns, ``step``,
        ``n_seeds``, ``mean``, ``ci_low``, ``ci_high`` (NaN with one seed), ``pretrain_loss`` (mean over seeds)
        with ``pretrain_loss_low`` / ``pretrain_loss_high``, ``pretrain_accuracy`` when present, and ``ci``.
    """
    check_boot(n_boot, ci)
    groups = group_columns(frame)
    per_seed = seed_values(unit_values(frame), groups)
    rows = []
    for key, part in per_seed.groupby([*groups, "step", "metric"], dropna=False, sort=True):
        metric = str(key[-1])
        n = len(part)
        row = dict(zip([*groups, "step", "metric"], key, strict=True))
        info = metric_info(metric)
        row |= {"label": info.label, "direction": info.direction, "n_seeds": n}
        counts = seed_counts(n, n_boot, rng_for(seed, "level", *key)) if n > 1 else None
        for col, out in (("value", "mean"), ("pretrain_loss", "pretrain_loss")):
            values = part[col].to_numpy(dtype=float)
            row[out] = float(values.mean())
            low, high = (float("nan"), float("nan"))
            if counts is not None:
                low, high = percentile_interval(weighted_means(values, counts), ci)
            suffix = ("ci_low", "ci_high") if col == "value" else ("pretrain_loss_low", "pretrain_loss_high")
            row[suffix[0]], row[suffix[1]] = low, high
        if "pretrain_accuracy" in part:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN accuracy: the mean is NaN, as it should be
                row["pretrain_accuracy"] = float(np.nanmean(part["pretrain_accuracy"].to_numpy(dtype=float)))
        rows.append(row | {"ci": ci})
    columns = ["metric", "label", "direction", *groups, "step", "n_seeds", "mean", "ci_low", "ci_high"]
    columns += ["pretrain_loss", "pretrain_loss_low", "pretrain_loss_high"]
    columns += ["pretrain_accuracy"] if "pretrain_accuracy" in per_seed else []
    return pd.DataFrame(rows, columns=[*columns, "ci"])


def check_boot(n_boot: int, ci: float) -> None:
    if n_boot < 1:
        raise ConfigError(f"n_boot must be positive, got {n_boot}")
    if not 0 < ci < 1:
        raise ConfigError(f"ci must lie strictly between 0 and 1, got {ci}")
