"""The random-init control: each metric at the best-pretrained checkpoint minus the same metric at step 0.

Without it a study cannot separate "pretraining made the model modular" from "a sparse mask (or a
drift profile) of this kind appears in any network" (Break It Down's random-init control).
"""

from typing import Any

import numpy as np
import pandas as pd

from modlens.analysis.bootstrap import check_boot, percentile_interval, rng_for, seed_counts, weighted_means
from modlens.analysis.correlation import POOLED
from modlens.analysis.metrics import metric_info
from modlens.analysis.units import CONTROL_STEP, group_columns, scope_name, seed_values, unit_values


def random_init_control(frame: pd.DataFrame, *, n_boot: int = 2000, ci: float = 0.95, seed: int = 0) -> pd.DataFrame:
    """Best-pretrained level minus random init, per metric and group, and pooled, with a seed bootstrap.

    The best-pretrained level of a group is its step > 0 with the lowest mean held-out pretraining loss.
    Seeds are resampled jointly for both levels (a seed's step-0 model is the start of its own trajectory,
    so the difference is paired). The pooled row is the mean of the group differences, resampled with the
    same seed draws.

    Args:
        frame: the study frame.
        n_boot: bootstrap resamples.
        ci: interval coverage.
        seed: seed of the resampling.

    Returns:
        One row per metric and scope (``"pooled"`` first): ``metric``, ``label``, ``direction``, ``scope``,
        the group columns, ``best_step``, ``best_loss``, ``control_loss``, ``best_mean``, ``control_mean``,
        ``difference``, ``ci_low``, ``ci_high``, ``n_seeds``, ``n_groups``, ``excludes_zero``, ``note``
        (``""``, ``"no random init"``, ``"no pretrained level"``, ``"one seed"``, ``"interval undefined"``), ``ci``.
    """
    check_boot(n_boot, ci)
    groups = group_columns(frame)
    per_seed = seed_values(unit_values(frame), groups)
    rows = []
    for metric, part in per_seed.groupby("metric", sort=True):
        info = metric_info(str(metric))
        base = {"metric": metric, "label": info.label, "direction": info.direction}
        seeds = np.unique(part["seed"].to_numpy())
        counts = seed_counts(seeds.size, n_boot, rng_for(seed, "control", metric)) if seeds.size > 1 else None
        group_rows, replicates = [], []
        for key, sub in part.groupby(groups, sort=True) if groups else [((), part)]:
            row, reps = _group_control(sub, seeds, counts, ci)
            coords = dict(zip(groups, key, strict=True))
            group_rows.append(base | {"scope": scope_name(groups, key)} | coords | row)
            if reps is not None:
                replicates.append(reps)
        valid = [r for r in group_rows if not r["note"].startswith("no ")]
        pooled: dict[str, Any] = {"n_seeds": seeds.size, "n_groups": len(valid), "ci": ci}
        pooled |= {k: np.nan for k in ("best_step", "best_loss", "control_loss", "ci_low", "ci_high")}
        for col in ("best_mean", "control_mean", "difference"):
            pooled[col] = float(np.mean([r[col] for r in valid])) if valid else np.nan
        pooled["note"] = "no random init or pretrained level" if not valid else "" if counts is not None else "one seed"
        if valid and counts is not None:
            pooled["ci_low"], pooled["ci_high"] = percentile_interval(np.mean(replicates, axis=0), ci)
            pooled["note"] = "" if np.isfinite(pooled["ci_low"]) else "interval undefined"
        if len(group_rows) == 1:  # one group: the pooled row is that group
            pooled |= {k: group_rows[0][k] for k in ("best_step", "best_loss", "control_loss")}
        pooled["excludes_zero"] = _excludes_zero(pooled["ci_low"], pooled["ci_high"])
        rows += [base | {"scope": POOLED} | pooled, *group_rows]
    columns = ["metric", "label", "direction", "scope", *groups, "best_step", "best_loss", "control_loss"]
    columns += ["best_mean", "control_mean", "difference", "ci_low", "ci_high", "n_seeds", "n_groups"]
    return pd.DataFrame(rows, columns=[*columns, "excludes_zero", "note", "ci"])


def _group_control(
    part: pd.DataFrame, seeds: np.ndarray, counts: np.ndarray | None, ci: float
) -> tuple[dict, np.ndarray | None]:
    """The control row of one group, and its difference's bootstrap replicates (None if not estimable)."""
    nan = float("nan")
    row: dict = {"best_step": nan, "best_loss": nan, "control_loss": nan, "best_mean": nan, "control_mean": nan}
    row |= {"difference": nan, "ci_low": nan, "ci_high": nan, "n_seeds": part["seed"].nunique(), "n_groups": 1}
    row |= {"ci": ci, "excludes_zero": False}
    control = part[part["step"] == CONTROL_STEP]
    trained = part[part["step"] != CONTROL_STEP]
    if control.empty or trained.empty:
        return row | {"note": "no random init" if control.empty else "no pretrained level"}, None
    best_step = trained.groupby("step")["pretrain_loss"].mean().idxmin()
    best = trained[trained["step"] == best_step]
    row |= {"best_step": int(best_step), "best_loss": best["pretrain_loss"].mean()}
    row |= {"control_loss": control["pretrain_loss"].mean(), "best_mean": best["value"].mean()}
    row |= {"control_mean": control["value"].mean()}
    row["difference"] = row["best_mean"] - row["control_mean"]
    if counts is None or part["seed"].nunique() < 2:
        return row | {"note": "one seed"}, None
    replicates = _level_means(best, seeds, counts) - _level_means(control, seeds, counts)
    row["ci_low"], row["ci_high"] = percentile_interval(replicates, ci)
    row["excludes_zero"] = _excludes_zero(row["ci_low"], row["ci_high"])
    return row | {"note": "" if np.isfinite(row["ci_low"]) else "interval undefined"}, replicates


def _level_means(level: pd.DataFrame, seeds: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Resampled means of one level: the global seed draws restricted to the seeds this level has."""
    index = np.searchsorted(seeds, level["seed"].to_numpy())
    return weighted_means(level["value"].to_numpy(dtype=float), counts[:, index])


def _excludes_zero(low: float, high: float) -> bool:
    return bool(np.isfinite(low) and np.isfinite(high) and (low > 0 or high < 0))
