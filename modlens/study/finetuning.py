"""Fine-tuning one checkpoint as the study does: a learning rate chosen on validation, two arms.

The stop-at-target arm stops once validation accuracy on the fine-tuning composites reaches the target; the
fixed-budget arm is the same run after exactly ``finetune.fixed_steps`` steps, whatever its accuracy, so every
checkpoint gets the same budget and step count cannot pass for modularity.
"""

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from modlens.models.model import Model
from modlens.study.presets import StudyConfig
from modlens.study.tasks import StudyTasks
from modlens.tasks.batch import Batch
from modlens.tasks.synthetic import SyntheticTask
from modlens.training.finetune import Data, FinetuneConfig, FinetuneResult, finetune
from modlens.training.methods import Method, Proxy, ProxyModel, method_named


@dataclass(frozen=True)
class Tuning:
    """The chosen fine-tune of one checkpoint.

    Attributes:
        target: the stop-at-target arm (its ``model``, ``steps`` and ``reached_target``).
        fixed_budget: the model after exactly ``study.finetune.fixed_steps`` steps at the same learning rate.
        lr: the learning rate chosen on validation.
        tried: learning rate -> (reached target, steps, final validation accuracy), for the record.
    """

    target: FinetuneResult[Any]
    fixed_budget: Model | ProxyModel
    lr: float
    tried: dict[float, tuple[bool, int, float]]


def study_method(name: str, expert: Model | None = None) -> Method:
    """The study's method ``name`` with its default options; proxy-tuning tunes ``expert``."""
    if name == "proxy":
        return Proxy(expert=expert)
    return method_named(name)


def finetune_checkpoint(base: Model, tasks: StudyTasks, method: Method | None = None) -> Tuning:
    """Fine-tunes ``base`` on the study's fine-tuning composites, with the pretraining corpus as replay
    (``tune_checkpoint`` on ``tasks.finetune``; validation on their val split)."""
    replay, weights = tasks.replay
    return tune_checkpoint(base, tasks.study, tasks.finetune, method, replay=replay, replay_weights=weights)


def tune_checkpoint(
    base: Model,
    study: StudyConfig,
    data: Data,
    method: Method | None = None,
    *,
    replay: Sequence[SyntheticTask] = (),
    replay_weights: Sequence[float] | None = None,
    val: Batch | None = None,
) -> Tuning:
    """Fine-tunes ``base`` on ``data`` (by ``method``, default all weights) once per learning rate of
    ``study.lr_grid`` and keeps the best on validation: reached the target first, then fewer steps, then higher
    accuracy. ``data``, ``replay``, ``replay_weights`` and ``val`` are ``modlens.training.finetune``'s (a fixed
    ``Batch``, e.g. a prompt file, needs ``val`` and takes no replay).

    Rates run from the largest down; once one has reached the target in ``s`` steps, later rates run at most
    ``s`` steps (they could only win by reaching it sooner), which picks the same rate as running all to the
    end (a base that already meets the target needs no other rate). The winner's fixed-budget snapshot comes
    from the same run, rerun (deterministically, up to the budget) when the winner's run did not keep it.
    """
    how = method if method is not None else method_named("full")
    best: tuple[tuple[bool, int, float], float, FinetuneResult[Any]] | None = None
    tried: dict[float, tuple[bool, int, float]] = {}

    def run(config: FinetuneConfig) -> FinetuneResult[Any]:
        return finetune(
            base, data, config, method=how, replay=replay, replay_weights=replay_weights, val=val, progress=False
        )

    for lr in sorted(study.lr_grid, reverse=True):
        cap = best[2].steps if best is not None and best[2].reached_target else study.finetune.max_steps
        if cap == 0:  # the base already meets the target: no rate can do better than no step at all
            break
        result = run(finetune_config(study, lr, cap, study.finetune.fixed_steps if best is None else None))
        accuracy = float(result.history["val_accuracy"].iloc[-1])
        tried[lr] = (result.reached_target, result.steps, accuracy)
        rank = (not result.reached_target, result.steps, -accuracy)
        if best is None or rank < best[0]:
            best = (rank, lr, result)
    assert best is not None
    _, lr, result = best
    if result.fixed_budget is None:
        # only the snapshot is wanted: stop there (the learning rate is constant after warm-up, so the first
        # fixed_steps steps are the same whatever the run's length)
        budget = study.finetune.fixed_steps
        assert budget is not None  # StudyConfig requires it
        result_with_budget = run(finetune_config(study, lr, budget, budget))
        assert result_with_budget.fixed_budget is not None
        fixed_model = result_with_budget.fixed_budget
    else:
        fixed_model = result.fixed_budget
    return Tuning(target=result, fixed_budget=fixed_model, lr=lr, tried=tried)


def finetune_config(study: StudyConfig, lr: float, max_steps: int, fixed_steps: int | None = None) -> FinetuneConfig:
    """The study's fine-tuning settings (``study.finetune``) at one learning rate and step budget."""
    return dataclasses.replace(study.finetune, lr=lr, max_steps=max_steps, fixed_steps=fixed_steps)
