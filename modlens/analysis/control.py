"""The random-init control: each metric at the best-pretrained checkpoint minus the same metric at step 0.

Without it a study cannot separate "pretraining made the model modular" from "a sparse mask (or a
drift profile) of this kind appears in any network" (Break It Down's random-init control). The difference
is paired within a pretraining run (a run's step-0 model is the start of its own trajectory) and tested
by flipping the signs of the runs' differences. It is descriptive: it gets no verdict.
"""

from typing import Any

import numpy as np
import pandas as pd

from modlens.analysis.correlation import N_PERM, WITHIN, check_test
from modlens.analysis.frame import (
    CONTROL_STEP,
    excluded_units,
    group_columns,
    run_level_values,
    scope_name,
    unit_values,
)
from modlens.analysis.metrics import metric_info
from modlens.analysis.permutation import normal_interval, rng_for, sign_flip_test


def random_init_control(frame: pd.DataFrame, *, n_perm: int = N_PERM, ci: float = 0.95, seed: int = 0) -> pd.DataFrame:
    """Best-pretrained level minus random init, per metric and group, and over groups, with a sign-flip test.

    The best-pretrained level of a group is its step > 0 with the lowest mean held-out pretraining loss.
    Each run with a value at both levels gives one paired difference; a group's difference is the mean
    over its runs, and the headline (``"within groups"``) difference the mean over groups.

    Args:
        frame: the study frame.
        n_perm: sign patterns (all are enumerated when there are at most this many).
        ci: coverage of the interval ``difference ± z · se`` (se: the sign-flip null standard error,
            ``sqrt(Σ w² d²)``, which does not shrink under an effect, so the interval errs wide).
        seed: seed of the Monte Carlo sign patterns.

    Returns:
        One row per metric and scope: ``metric``, ``label``, ``direction``, ``scope``, the group columns,
        ``best_step``, ``best_loss``, ``control_loss``, ``best_mean``, ``control_mean``, ``difference``,
        ``se``, ``ci_low``, ``ci_high``, ``p_value``, ``n_runs``, ``n_groups``, ``n_excluded``, ``note``
        (``""``, ``"no random init"``, ``"no pretrained level"``, ``"no paired runs"``), ``exact``, ``ci``.
    """
    check_test(n_perm, ci)
    groups = group_columns(frame)
    per_run = run_level_values(unit_values(frame), groups)
    excluded = excluded_units(frame).set_index("metric")["n_excluded"]
    rows = []
    for metric, part in per_run.groupby("metric", sort=True):
        info = metric_info(str(metric))
        base = {"metric": metric, "label": info.label, "direction": info.direction}
        base["n_excluded"] = int(excluded.get(metric, 0))
        group_rows, diffs = [], []
        for key, sub in part.groupby(groups, sort=True) if groups else [((), part)]:
            key = key if isinstance(key, tuple) else (key,)
            row, d = _group_control(sub, ci, n_perm, rng_for(seed, "control", metric, key))
            group_rows.append(base | {"scope": scope_name(groups, key)} | dict(zip(groups, key, strict=True)) | row)
            if d.size:
                diffs.append(d)
        head = _pooled(diffs, ci, n_perm, rng_for(seed, "control", metric))
        if len(group_rows) == 1:  # one group: the headline row is that group
            head |= {k: group_rows[0][k] for k in ("best_step", "best_loss", "control_loss", "note")}
        head |= {c: float(np.mean([r[c] for r in group_rows if np.isfinite(r[c])] or [np.nan])) for c in _MEANS}
        rows += [base | {"scope": WITHIN} | head, *group_rows]
    columns = ["metric", "label", "direction", "scope", *groups, "best_step", "best_loss", "control_loss"]
    columns += ["best_mean", "control_mean", "difference", "se", "ci_low", "ci_high", "p_value"]
    return pd.DataFrame(rows, columns=[*columns, "n_runs", "n_groups", "n_excluded", "note", "exact", "ci"])


_MEANS = ("best_mean", "control_mean")
_NUMBERS = ("best_step", "best_loss", "control_loss", "best_mean", "control_mean", "difference", "se")


def _empty(ci: float) -> dict[str, Any]:
    row: dict[str, Any] = {k: np.nan for k in (*_NUMBERS, "ci_low", "ci_high", "p_value")}
    return row | {"n_runs": 0, "n_groups": 0, "exact": False, "ci": ci}


def _test(row: dict[str, Any], diffs: np.ndarray, weights: np.ndarray, ci: float, n_perm: int, rng) -> dict:
    test = sign_flip_test(diffs[None, :], weights, n_perm=n_perm, rng=rng)
    low, high = normal_interval(test.estimate, test.se, ci)
    row |= {"difference": float(test.estimate[0]), "se": float(test.se[0]), "p_value": float(test.p_value[0])}
    return row | {"ci_low": float(low[0]), "ci_high": float(high[0]), "exact": test.exact}


def _group_control(part: pd.DataFrame, ci: float, n_perm: int, rng) -> tuple[dict, np.ndarray]:
    """The control row of one group, and its runs' paired differences (empty if not estimable)."""
    row = _empty(ci) | {"n_groups": 1}
    control = part[part["step"] == CONTROL_STEP]
    trained = part[part["step"] != CONTROL_STEP]
    if control.empty or trained.empty:
        return row | {"note": "no random init" if control.empty else "no pretrained level"}, np.array([])
    best_step = trained.groupby("step")["pretrain_loss"].mean().idxmin()
    best = trained[trained["step"] == best_step].set_index("seed")
    ctrl = control.set_index("seed")
    row |= {"best_step": int(best_step), "best_loss": best["pretrain_loss"].mean()}
    row |= {"control_loss": ctrl["pretrain_loss"].mean(), "best_mean": best["value"].mean()}
    row |= {"control_mean": ctrl["value"].mean()}
    paired = best.index.intersection(ctrl.index)
    diffs = (best.loc[paired, "value"] - ctrl.loc[paired, "value"]).to_numpy(dtype=float)
    row["n_runs"] = diffs.size
    if not diffs.size:
        return row | {"note": "no paired runs"}, diffs
    return _test(row, diffs, np.full(diffs.size, 1 / diffs.size), ci, n_perm, rng) | {"note": ""}, diffs


def _pooled(diffs: list[np.ndarray], ci: float, n_perm: int, rng) -> dict:
    """The mean over groups of each group's mean paired difference, with one sign flip per run."""
    row = _empty(ci) | {"n_groups": len(diffs), "n_runs": sum(d.size for d in diffs)}
    if not diffs:
        return row | {"note": "no random init or pretrained level"}
    weights = np.concatenate([np.full(d.size, 1 / (d.size * len(diffs))) for d in diffs])
    return _test(row, np.concatenate(diffs), weights, ci, n_perm, rng) | {"note": ""}
