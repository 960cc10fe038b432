"""The primary metrics: at most three get a verdict, from the within-run permutation test, Holm-corrected.

Every other metric is descriptive (estimate and interval, no verdict). The family size is the number of
declared primary metrics, whether or not each could be assessed, so a metric that drops out (every
fine-tune missed its target) cannot loosen the correction for the others.
"""

from collections.abc import Sequence

import numpy as np
import pandas as pd

from modlens.analysis.correlation import WITHIN
from modlens.analysis.metrics import metric_info
from modlens.analysis.ranks import MIN_UNITS
from modlens.errors import ConfigError

PRIMARY_METRICS = ("heldout_composite_accuracy", "reuse_specificity", "weight_drift_upper_share")
MAX_PRIMARY = 3
ALPHA = 0.05
ESTABLISHED = "established"
NOT_ESTABLISHED = "not established"
NOT_ASSESSED = "not assessed"
_REASONS = {
    "no values": "no pretrained unit has a value",
    "too few units": f"fewer than {MIN_UNITS} pretrained units in every group",
    "constant": "the metric or the pretraining loss is constant within every group",
    "one checkpoint per run": "each run has one pretrained checkpoint: the within-run test has nothing to permute",
}


def check_primary(primary_metrics: Sequence[str]) -> tuple[str, ...]:
    """The primary metrics as a tuple; ConfigError unless one to three distinct names."""
    names = tuple(primary_metrics)
    if not 1 <= len(names) <= MAX_PRIMARY:
        raise ConfigError(f"declare one to {MAX_PRIMARY} primary_metrics, got {len(names)}: {', '.join(names)}")
    if len(set(names)) != len(names):
        raise ConfigError(f"primary_metrics repeat a name: {', '.join(names)}")
    return names


def holm(p_values: np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values along the last axis; NaN counts as 1 (a member that was not tested)."""
    p = np.where(np.isfinite(p_values), p_values, 1.0)
    m = p.shape[-1]
    order = np.argsort(p, axis=-1, kind="stable")
    ranked = np.take_along_axis(p, order, axis=-1) * (m - np.arange(m))
    adjusted_sorted = np.minimum(np.maximum.accumulate(ranked, axis=-1), 1.0)
    adjusted = np.empty_like(p)
    np.put_along_axis(adjusted, order, adjusted_sorted, axis=-1)
    return adjusted


def verdict(metric: str, rho: float, p_adjusted: float, *, alpha: float = ALPHA) -> str:
    """``"established: more modular"`` / ``"established: less modular"`` when ``p_adjusted < alpha``, else
    ``"not established"``; for a context metric, which way it moves with better pretraining."""
    if not (np.isfinite(p_adjusted) and p_adjusted < alpha) or rho == 0:
        return NOT_ESTABLISHED
    rises = rho < 0  # ρ(loss, metric) < 0: the metric rises as loss falls
    direction = metric_info(metric).direction
    if direction == 0:
        return f"{ESTABLISHED}: {'higher' if rises else 'lower'} with better pretraining"
    return f"{ESTABLISHED}: {'more' if rises == (direction > 0) else 'less'} modular"


def primary_table(
    correlations: pd.DataFrame, primary_metrics: Sequence[str] = PRIMARY_METRICS, *, alpha: float = ALPHA
) -> pd.DataFrame:
    """One row per primary metric: the headline within-group ρ, its interval, raw and Holm-adjusted p, verdict.

    Args:
        correlations: ``rank_correlations`` output.
        primary_metrics: the declared primary metrics (one to three).
        alpha: family-wise level of the verdicts.

    Returns:
        Columns ``metric``, ``label``, ``direction``, ``rho``, ``ci_low``, ``ci_high``, ``p_value``,
        ``p_adjusted``, ``verdict``, ``reason`` (why a metric was not assessed, else ``""``), ``n_units``,
        ``n_runs``, ``n_groups``, ``n_excluded``, ``ci``.
    """
    names = check_primary(primary_metrics)
    head = correlations[correlations["scope"] == WITHIN].set_index("metric")
    rows = []
    for name in names:
        info = metric_info(name)
        row = {"metric": name, "label": info.label, "direction": info.direction}
        if name not in head.index:
            rows.append(row | {"reason": "not measured in this study", "n_units": 0, "n_runs": 0, "n_excluded": 0})
            continue
        found = head.loc[name]
        row |= {c: found[c] for c in ("rho", "ci_low", "ci_high", "p_value", "n_units", "n_runs", "n_groups")}
        row |= {"n_excluded": found["n_excluded"], "ci": found["ci"]}
        reason = _REASONS.get(str(found["note"]), str(found["note"]))
        if found["note"] == "no values" and found["n_excluded"]:
            reason = f"all {int(found['n_excluded'])} pretrained units were excluded: no value"
        rows.append(row | {"reason": reason if not np.isfinite(found["p_value"]) else ""})
    table = pd.DataFrame(rows)
    for column in ("rho", "ci_low", "ci_high", "p_value", "n_groups", "ci"):
        if column not in table:  # no primary metric was measured at all
            table[column] = np.nan
    table["p_adjusted"] = holm(table["p_value"].to_numpy(dtype=float))
    table.loc[~np.isfinite(table["p_value"]), "p_adjusted"] = np.nan
    table["verdict"] = [
        NOT_ASSESSED if r else verdict(m, rho, p, alpha=alpha)
        for m, rho, p, r in zip(table["metric"], table["rho"], table["p_adjusted"], table["reason"], strict=True)
    ]
    columns = ["metric", "label", "direction", "rho", "ci_low", "ci_high", "p_value", "p_adjusted", "verdict"]
    return table[[*columns, "reason", "n_units", "n_runs", "n_groups", "n_excluded", "ci"]]
