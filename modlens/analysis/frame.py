"""The study frame: reducing it to one value per unit and metric, and naming runs, groups and levels.

A *pretraining run* is one (group, seed): one trajectory, whose checkpoints are its ``step`` values (step 0 is
random initialisation, the control). A *group* is (depth, corpus, label noise, whichever are present); a
*level* is a group at one step. Runs, not seed labels, are the replicates the analysis resamples.
"""

from collections.abc import Sequence

import pandas as pd

from modlens.errors import ModlensError

GROUP_COLUMNS = ("depth", "corpus", "label_noise")
REQUIRED_COLUMNS = ("step", "seed", "pretrain_loss", "metric", "value")
CONTROL_STEP = 0  # random initialisation: the control


def group_columns(frame: pd.DataFrame) -> list[str]:
    """The grouping columns present in ``frame`` (absent ones are simply not grouped by)."""
    return [c for c in GROUP_COLUMNS if c in frame.columns]


def check_frame(frame: pd.DataFrame) -> None:
    """Raises ModlensError naming the missing columns if ``frame`` is not a study frame."""
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise ModlensError(f"the study frame lacks columns {', '.join(missing)} (has {', '.join(map(str, frame))})")


def _with_unit(frame: pd.DataFrame) -> pd.DataFrame:
    data = frame.copy()
    if "unit" not in data.columns:
        data["unit"] = data[[*group_columns(frame), "step", "seed"]].astype(str).agg("|".join, axis=1)
    return data


def unit_values(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per unit and metric: the value averaged over subroutines, with the unit's pretraining quality.

    A unit is a row of the ``unit`` column when present, else one (level, seed). Rows with a missing value
    are dropped (a metric undefined for a unit does not count as a zero; ``excluded_units`` counts them).

    Returns:
        Columns: the group columns, ``step``, ``seed``, ``unit``, ``metric``, ``value``, ``pretrain_loss``,
        and ``pretrain_accuracy`` when the frame has it.
    """
    check_frame(frame)
    level_seed = [*group_columns(frame), "step", "seed"]
    data = _with_unit(frame[frame["value"].notna()])
    keep = ["pretrain_loss", *(["pretrain_accuracy"] if "pretrain_accuracy" in data.columns else [])]
    data[[*keep, "value"]] = data[[*keep, "value"]].astype(float)
    out = data.groupby([*level_seed, "unit", "metric"], as_index=False, dropna=False, sort=True)[
        ["value", *keep]
    ].mean()
    return out.reset_index(drop=True)


def excluded_units(frame: pd.DataFrame) -> pd.DataFrame:
    """Units that report a metric but have no value for it (every subroutine NaN), per metric.

    Returns:
        One row per metric of ``frame``: ``metric``, ``n_excluded`` and ``n_excluded_pretrained`` (step > 0).
    """
    check_frame(frame)
    data = _with_unit(frame)
    data["finite"] = data["value"].notna()
    per_unit = data.groupby(["metric", "unit"], sort=True).agg(finite=("finite", "any"), step=("step", "first"))
    per_unit["excluded"] = ~per_unit["finite"]
    per_unit["excluded_pretrained"] = per_unit["excluded"] & (per_unit["step"] != CONTROL_STEP)
    out = per_unit.groupby(level="metric")[["excluded", "excluded_pretrained"]].sum().astype(int)
    out = out.rename(columns={"excluded": "n_excluded", "excluded_pretrained": "n_excluded_pretrained"})
    return out.reset_index()


def run_ids(units: pd.DataFrame, groups: Sequence[str]) -> pd.Series:
    """A label per row naming its pretraining run: the group coordinates and the seed."""
    if units.empty:
        return pd.Series([], index=units.index, dtype=object)
    return units[[*groups, "seed"]].astype(str).agg("|".join, axis=1)


def run_level_values(units: pd.DataFrame, groups: Sequence[str]) -> pd.DataFrame:
    """One row per level, run and metric: units of the same level and run averaged (usually one each)."""
    cols = [c for c in ("value", "pretrain_loss", "pretrain_accuracy") if c in units.columns]
    return units.groupby([*groups, "step", "seed", "metric"], as_index=False, dropna=False, sort=True)[cols].mean()


def scope_name(groups: Sequence[str], key: Sequence[object]) -> str:
    """A readable name of one group, e.g. ``depth=2, corpus=primitives, label_noise=0.0``."""
    return ", ".join(f"{g}={v}" for g, v in zip(groups, key, strict=True)) or "all units"
