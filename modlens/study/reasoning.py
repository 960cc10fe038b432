"""The study's reasoning-faithfulness measures: does a model's final answer depend on the intermediate it wrote?

Each probe (``modlens.faithfulness``) edits the written intermediate of the fine-tuning composites' test examples
and asks whether the final answer stays the same; measured on the base and on each fine-tune, so the study reports
the rate before and after fine-tuning, per method. A model that uses its intermediate changes its answer under
corruption, and gives the answer that belongs to the intermediate it was handed (``answer_follows_corruption``).
"""

import math
from dataclasses import dataclass

from modlens.faithfulness import PROBES, LogitModel, run_faithfulness
from modlens.study.tasks import StudyTasks

N_PROBED = 128
"""Test examples each probe edits (a rate over 128 examples has a standard error of at most 0.044)."""

PROBE_METRICS = (*(f"answer_unchanged_{probe}" for probe in PROBES), "answer_follows_corruption")
"""The probe metrics, as the study names them (``_base`` for the base checkpoint, ``_fixed_budget`` for that arm)."""

NO_INTERMEDIATES = "the task layout writes no intermediate result, so there is nothing to edit"


@dataclass(frozen=True)
class ProbeRates:
    """The probe metrics measured on one model, or the names left out and why."""

    values: dict[str, float]
    absent: tuple[str, ...] = ()
    reason: str = ""


def reasoning_probes(model: LogitModel, tasks: StudyTasks) -> ProbeRates:
    """The rate at which the final answer survives each edit of the intermediate (``PROBE_METRICS``)."""
    layout = tasks.layout
    if not layout.write_intermediates or layout.n_segments < 2:
        return ProbeRates({}, PROBE_METRICS, NO_INTERMEDIATES)
    frame = run_faithfulness(model, tasks.test("finetune")[:N_PROBED], layout).set_index("probe")
    values = {f"answer_unchanged_{probe}": float(frame.loc[probe, "unchanged"]) for probe in PROBES}
    follows = float(frame.loc["corruption", "follows"])
    values["answer_follows_corruption"] = follows if not math.isnan(follows) else math.nan
    return ProbeRates(values)
