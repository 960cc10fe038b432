"""Reducing the study frame to one value per unit and metric, and per level and seed.

A *level* is one pretraining checkpoint of one configuration: the group columns (depth, corpus,
label noise, whichever are present) plus ``step``. Seeds are the replicates the intervals resample.
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


def unit_values(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per unit and metric: the value averaged over subroutines, with the unit's pretraining quality.

    A unit is a row of the ``unit`` column when present, else one (level, seed). Rows with a missing value
    are dropped (a metric undefined for a unit does not count as a zero).

    Returns:
        Columns: the group columns, ``step``, ``seed``, ``unit``, ``metric``, ``value``, ``pretrain_loss``,
        and ``pretrain_accuracy`` when the frame has it.
    """
    check_frame(frame)
    groups = group_columns(frame)
    level_seed = [*groups, "step", "seed"]
    data = frame[frame["value"].notna()].copy()
    if "unit" not in data.columns:
        data["unit"] = data[level_seed].astype(str).agg("|".join, axis=1)
    keep = ["pretrain_loss", *(["pretrain_accuracy"] if "pretrain_accuracy" in data.columns else [])]
    data[[*keep, "value"]] = data[[*keep, "value"]].astype(float)
    out = data.groupby([*level_seed, "unit", "metric"], as_index=False, dropna=False, sort=True)[
        ["value", *keep]
    ].mean()
    return out.reset_index(drop=True)


def seed_values(units: pd.DataFrame, groups: Sequence[str]) -> pd.DataFrame:
    """One row per level, seed and metric: units of the same level and seed averaged (usually one each)."""
    cols = [c for c in ("value", "pretrain_loss", "pretrain_accuracy") if c in units.columns]
    return units.groupby([*groups, "step", "seed", "metric"], as_index=False, dropna=False, sort=True)[cols].mean()


def scope_name(groups: Sequence[str], key: Sequence[object]) -> str:
    """A readable name of one group, e.g. ``depth=2, corpus=primitives, label_noise=0.0``."""
    return ", ".join(f"{g}={v}" for g, v in zip(groups, key, strict=True)) or "all units"
