"""Within-group rank correlation between pretraining loss and each metric, tested by within-run permutation.

Sign convention: pretraining loss falls as pretraining improves, so ρ(loss, metric) < 0 means the metric
rises with better pretraining. The estimate is the within-group ρ (each depth/corpus/noise group's
Spearman ρ over its pretrained units, averaged weighted by units); the pooled ρ across groups is reported
beside it as a summary only, since pooling groups of different depth or corpus can create or hide a trend.
"""

from typing import Any

import numpy as np
import pandas as pd

from modlens.analysis.frame import CONTROL_STEP, excluded_units, group_columns, run_ids, scope_name, unit_values
from modlens.analysis.metrics import metric_info
from modlens.analysis.permutation import normal_interval, rng_for, within_run_test
from modlens.analysis.ranks import MIN_UNITS, spearman
from modlens.errors import ConfigError

WITHIN = "within groups"  # the scope of a metric's headline row
N_PERM = 1999


def check_test(n_perm: int, ci: float) -> None:
    """Raises ConfigError for a non-positive permutation count or a coverage outside (0, 1)."""
    if n_perm < 1:
        raise ConfigError(f"n_perm must be positive, got {n_perm}")
    if not 0 < ci < 1:
        raise ConfigError(f"ci must lie strictly between 0 and 1, got {ci}")


def rank_correlations(frame: pd.DataFrame, *, n_perm: int = N_PERM, ci: float = 0.95, seed: int = 0) -> pd.DataFrame:
    """Within-group Spearman ρ(pretraining loss, metric) over pretrained units, with a within-run permutation test.

    Each pretrained unit (step > 0) contributes one point: its base checkpoint's held-out loss and its
    metric averaged over subroutines. Units without a value are dropped and counted. Random init (step 0)
    is left to ``random_init_control``.

    Args:
        frame: the study frame.
        n_perm: permutations (all are enumerated when there are at most this many).
        ci: coverage of the interval ``ρ ± z · se`` (se: the null standard error, see ``permutation``).
        seed: seed of the Monte Carlo permutations.

    Returns:
        One row per metric and scope (``"within groups"`` first, then each group): ``metric``, ``label``,
        ``direction``, ``scope``, the group columns, ``n_units``, ``n_runs``, ``n_groups``, ``n_excluded``
        (pretrained units without a value), ``rho``, ``se``, ``ci_low``, ``ci_high``, ``p_value``,
        ``pooled_rho`` (headline rows: ρ across all pretrained units, a summary), ``better_pretraining``
        (``"higher"`` / ``"lower"`` / ``"no change"`` / ``""``), ``note`` (``""``, ``"no values"``,
        ``"too few units"``, ``"constant"``, ``"one checkpoint per run"``), ``exact``, ``ci``.
    """
    check_test(n_perm, ci)
    groups = group_columns(frame)
    units = unit_values(frame)
    units = units[units["step"] != CONTROL_STEP]
    excluded = excluded_units(frame).set_index("metric")["n_excluded_pretrained"]
    rows = []
    for metric in sorted(frame["metric"].unique()):
        info = metric_info(str(metric))
        part = units[units["metric"] == metric]
        base = {"metric": metric, "label": info.label, "direction": info.direction}
        base["n_excluded"] = int(excluded.get(metric, 0))
        head = _correlate(part, groups, n_perm, ci, rng_for(seed, "rho", metric))
        head["pooled_rho"] = (
            spearman(part["pretrain_loss"].to_numpy(), part["value"].to_numpy()) if len(part) >= MIN_UNITS else np.nan
        )
        rows.append(base | {"scope": WITHIN} | head)
        for key, sub in part.groupby(groups, sort=True) if len(groups) and len(part) else ():
            key = key if isinstance(key, tuple) else (key,)
            name = scope_name(groups, key)
            coords = dict(zip(groups, key, strict=True))
            one = _correlate(sub, groups, n_perm, ci, rng_for(seed, "rho", metric, name))
            rows.append(base | {"scope": name} | coords | one | {"n_excluded": np.nan, "pooled_rho": np.nan})
    columns = ["metric", "label", "direction", "scope", *groups, "n_units", "n_runs", "n_groups", "n_excluded"]
    columns += ["rho", "se", "ci_low", "ci_high", "p_value", "pooled_rho", "better_pretraining", "note"]
    return pd.DataFrame(rows, columns=[*columns, "exact", "ci"])


def _correlate(units: pd.DataFrame, groups: list[str], n_perm: int, ci: float, rng: np.random.Generator) -> dict:
    units = units.sort_values([*groups, "seed", "step"])
    runs = run_ids(units, groups).to_numpy()
    group = units[groups].astype(str).agg("|".join, axis=1).to_numpy() if groups else np.zeros(len(units))
    out: dict[str, Any] = {"n_units": len(units), "n_runs": len(set(runs)), "n_groups": len(set(group)), "ci": ci}
    out |= {k: np.nan for k in ("rho", "se", "ci_low", "ci_high", "p_value")} | {"exact": False}
    sizes = pd.Series(group).value_counts() if len(units) else pd.Series(dtype=int)
    if units.empty:
        return out | {"better_pretraining": "", "note": "no values"}
    if sizes.max() < MIN_UNITS:
        return out | {"better_pretraining": "", "note": "too few units"}
    x = units["pretrain_loss"].to_numpy(dtype=float)
    y = units["value"].to_numpy(dtype=float)
    test = within_run_test(x, y, group, runs, n_perm=n_perm, rng=rng)
    rho = float(test.estimate[0])
    if not np.isfinite(rho):
        return out | {"better_pretraining": "", "note": "constant"}
    low, high = normal_interval(test.estimate, test.se, ci, bounds=(-1.0, 1.0))
    moved = pd.Series(runs).value_counts().max() > 1
    out |= {"rho": rho, "se": float(test.se[0]), "ci_low": float(low[0]), "ci_high": float(high[0])}
    out |= {"p_value": float(test.p_value[0]) if moved else np.nan, "exact": test.exact}
    better = "higher" if rho < 0 else "lower" if rho > 0 else "no change"
    return out | {"better_pretraining": better, "note": "" if moved else "one checkpoint per run"}
