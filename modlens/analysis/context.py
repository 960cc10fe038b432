"""Sentences about what the study's units can carry, computed from the frame: how many fine-tunes learned the
task, and whether unseen pairs are solved at any pretraining level at all (else held-out accuracy ranks
checkpoints on a floor effect, and the answer says so instead)."""

import numpy as np
import pandas as pd

from modlens.analysis.frame import group_columns, unit_values

REUSE_FLOOR = 0.5
"""Held-out pair accuracy below which no pretraining level shows behavioural reuse."""


def context_sentences(frame: pd.DataFrame) -> tuple[str, ...]:
    """The fine-tunes that reached their target, and the floor-effect warning when it applies."""
    return tuple(s for s in (_reached(frame), _reuse_floor(frame)) if s)


def _reached(frame: pd.DataFrame) -> str:
    units = unit_values(frame[frame["metric"] == "reached_target"])
    if units.empty:
        return ""
    reached, total = int((units["value"] > 0.5).sum()), len(units)
    missed = total - reached
    tail = (
        f"; the {missed} that did not are counted and left out of every mechanistic metric"
        if missed
        else ", so every unit enters the mechanistic metrics"
    )
    return f"{reached} of {total} fine-tunes reached their accuracy target on the trained composites{tail}."


def _reuse_floor(frame: pd.DataFrame) -> str:
    units = unit_values(frame[frame["metric"] == "heldout_composite_accuracy"])
    if units.empty:
        return ""
    levels = units.groupby([*group_columns(frame), "step"])["value"].mean()
    best = float(levels.max())
    if not np.isfinite(best) or best >= REUSE_FLOOR:
        return ""
    where = levels.idxmax()
    step = where[-1] if isinstance(where, tuple) else where
    return (
        f"No systematic reuse at this scale: accuracy on unseen composite pairs stays below {REUSE_FLOOR} at every "
        f"pretraining level (best {best:.2f}, at step {int(step)}), so ranking checkpoints on it measures a floor "
        "effect; the mechanistic reuse test still runs on the trained pairs."
    )
