"""Each metric at each level (group and step): the mean over pretraining runs with a t interval over runs.

These are the figures' points and error bars, and the per-checkpoint table. The t interval assumes run
means roughly normal; with three runs it is wide (t quantile 4.30), as it should be.
"""

import math
import warnings
from functools import lru_cache

import numpy as np
import pandas as pd

from modlens.analysis.correlation import check_test
from modlens.analysis.frame import group_columns, run_level_values, unit_values
from modlens.analysis.metrics import metric_info


@lru_cache(maxsize=64)
def t_quantile(q: float, df: int) -> float:
    """The ``q`` quantile (0.5 < q < 1) of Student's t with ``df`` degrees of freedom (numerical, ~1e-5)."""
    log_c = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)

    def cdf(t: float) -> float:
        u = np.linspace(0.0, t, 20001)
        return 0.5 + float(np.trapezoid(np.exp(log_c - (df + 1) / 2 * np.log1p(u * u / df)), u))

    low, high = 0.0, 1e4
    for _ in range(60):
        mid = (low + high) / 2
        low, high = (mid, high) if cdf(mid) < q else (low, mid)
    return (low + high) / 2


def mean_interval(values: np.ndarray, ci: float) -> tuple[float, float, float]:
    """Mean and its t interval; the interval is NaN with fewer than two values."""
    values = np.asarray(values, dtype=float)
    mean = float(values.mean()) if values.size else float("nan")
    if values.size < 2:
        return mean, float("nan"), float("nan")
    half = t_quantile(0.5 + ci / 2, values.size - 1) * float(values.std(ddof=1)) / math.sqrt(values.size)
    return mean, mean - half, mean + half


def summarize_levels(frame: pd.DataFrame, *, ci: float = 0.95) -> pd.DataFrame:
    """Each metric at each level: the mean over runs with a t interval over runs.

    Subroutines are averaged within a unit first, then units within a (level, run), then runs.

    Args:
        frame: the study frame (see ``modlens.analysis``).
        ci: interval coverage.

    Returns:
        One row per metric and level: ``metric``, ``label``, ``direction``, the group columns, ``step``,
        ``n_runs``, ``mean``, ``ci_low``, ``ci_high`` (NaN with one run), ``pretrain_loss`` (mean over runs)
        with ``pretrain_loss_low`` / ``pretrain_loss_high``, ``pretrain_accuracy`` when present, and ``ci``.
    """
    check_test(1, ci)
    groups = group_columns(frame)
    per_run = run_level_values(unit_values(frame), groups)
    rows = []
    for key, part in per_run.groupby([*groups, "step", "metric"], dropna=False, sort=True):
        metric = str(key[-1])
        row = dict(zip([*groups, "step", "metric"], key, strict=True))
        info = metric_info(metric)
        row |= {"label": info.label, "direction": info.direction, "n_runs": len(part)}
        row["mean"], row["ci_low"], row["ci_high"] = mean_interval(part["value"].to_numpy(), ci)
        loss = mean_interval(part["pretrain_loss"].to_numpy(), ci)
        row["pretrain_loss"], row["pretrain_loss_low"], row["pretrain_loss_high"] = loss
        if "pretrain_accuracy" in part:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN accuracy: the mean is NaN, as it should be
                row["pretrain_accuracy"] = float(np.nanmean(part["pretrain_accuracy"].to_numpy(dtype=float)))
        rows.append(row | {"ci": ci})
    columns = ["metric", "label", "direction", *groups, "step", "n_runs", "mean", "ci_low", "ci_high"]
    columns += ["pretrain_loss", "pretrain_loss_low", "pretrain_loss_high"]
    columns += ["pretrain_accuracy"] if "pretrain_accuracy" in per_run else []
    return pd.DataFrame(rows, columns=[*columns, "ci"])


COUNTED = ("reached_target", "mask_rejection_rate")


def checkpoint_counts(frame: pd.DataFrame) -> pd.DataFrame:
    """Per level: how many fine-tunes reached their target and the share of masks rejected as unfaithful.

    Returns:
        One row per level (group columns, ``step``) with, where the frame has them, ``finetunes``,
        ``reached_target`` (count of units with ``reached_target`` = 1) and ``mask_rejection_rate`` (mean
        over the level's units); empty when the frame has neither metric.
    """
    groups = group_columns(frame)
    units = unit_values(frame[frame["metric"].isin(COUNTED)])
    if units.empty:
        return pd.DataFrame(columns=[*groups, "step"])
    keys = [*groups, "step"]
    table = units[keys].drop_duplicates().sort_values(keys).set_index(keys)
    reached = units[units["metric"] == "reached_target"].groupby(keys)["value"]
    if len(reached):
        table["finetunes"] = reached.size()
        table["reached_target"] = (reached.sum()).round().astype("Int64")
    rejected = units[units["metric"] == "mask_rejection_rate"].groupby(keys)["value"].mean()
    if len(rejected):
        table["mask_rejection_rate"] = rejected
    return table.reset_index()
