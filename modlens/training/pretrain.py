"""Pretraining on a corpus of primitives (optionally plus composites), with checkpoints along one trajectory."""

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from transformers import PreTrainedModel

from modlens.errors import ConfigError
from modlens.models.model import Model
from modlens.tasks.synthetic import SyntheticTask, sample_mixture
from modlens.training.loop import Schedule, train, trainable_copy


@dataclass(frozen=True, kw_only=True)
class PretrainConfig:
    """Pretraining corpus and optimiser.

    Attributes:
        steps: total optimiser steps.
        checkpoints: steps at which to keep the model (0 = the random initialisation).
        batch_size: sequences per step.
        label_noise: fraction of corpus examples whose answer is random (corpus quality).
        composite_fraction: share of each batch drawn from the extra composite tasks.
        step_fraction: share of each batch drawn from the step forms (each primitive as one step of a
            two-step program, ``modlens.tasks.synthetic.step_forms``).
        lr: peak learning rate; warm-up and cosine decay span the whole run.
        warmup: warm-up steps.
        seed: data and optimiser seed.
    """

    steps: int = 3000
    checkpoints: tuple[int, ...] = (0, 300, 1000, 3000)
    batch_size: int = 64
    label_noise: float = 0.0
    composite_fraction: float = 0.0
    step_fraction: float = 0.0
    lr: float = 3e-3
    warmup: int = 100
    seed: int = 0

    def __post_init__(self) -> None:
        if self.steps < 0:
            raise ConfigError(f"steps must be >= 0, got {self.steps}")
        bad = [c for c in self.checkpoints if not 0 <= c <= self.steps]
        if bad:
            raise ConfigError(f"checkpoint steps {bad} lie outside 0..{self.steps}")
        if not 0.0 <= self.label_noise <= 1.0:
            raise ConfigError(f"label_noise must be in [0, 1], got {self.label_noise}")
        if not 0.0 <= self.composite_fraction < 1.0:
            raise ConfigError(f"composite_fraction must be in [0, 1), got {self.composite_fraction}")
        if not 0.0 <= self.step_fraction < 1.0 or self.composite_fraction + self.step_fraction >= 1.0:
            raise ConfigError(
                f"step_fraction must be in [0, 1) and leave room for the primitives, got {self.step_fraction}"
            )


@dataclass(frozen=True)
class Trajectory:
    """Checkpoints of one pretraining run, by step."""

    checkpoints: dict[int, Model] = field(default_factory=dict)

    @property
    def steps(self) -> list[int]:
        return sorted(self.checkpoints)


def pretrain(
    model: Model,
    primitives: Sequence[SyntheticTask],
    config: PretrainConfig,
    *,
    composites: Sequence[SyntheticTask] = (),
    steps: Sequence[SyntheticTask] = (),
    on_checkpoint: Callable[[int, Model], None] | None = None,
    progress: bool = True,
) -> Trajectory:
    """Pretrains a copy of ``model`` and returns the checkpoints at ``config.checkpoints``.

    Args:
        model: the initial model (its weights are the step-0 checkpoint; it is not modified).
        primitives: tasks of the corpus.
        config: corpus and optimiser settings.
        composites: extra composite tasks mixed in at ``config.composite_fraction`` (corpus diversity).
        steps: step forms mixed in at ``config.step_fraction``.
        on_checkpoint: called with each checkpoint as it is taken (e.g. to save it at once).
        progress: show a progress bar.
    """
    if not primitives:
        raise ConfigError("pretraining needs at least one primitive task")
    if config.composite_fraction > 0 and not composites:
        raise ConfigError("composite_fraction > 0 needs composite tasks")
    if config.step_fraction > 0 and not steps:
        raise ConfigError("step_fraction > 0 needs step forms")
    tasks, weights = mixture_weights(
        primitives, (composites, config.composite_fraction if composites else 0.0), (steps, config.step_fraction)
    )

    def sampler(step: int):
        return sample_mixture(
            tasks,
            config.batch_size,
            split="train",
            seed=config.seed * 10_000_019 + step,
            label_noise=config.label_noise,
            weights=weights,
        )

    kept: dict[int, Model] = {}
    wanted = set(config.checkpoints)

    def keep(step: int, hf: PreTrainedModel) -> bool:
        if step in wanted:
            snapshot = model.with_weights(copy.deepcopy(hf).eval(), source=f"{model.source}@step{step}")
            for p in snapshot.hf.parameters():
                p.requires_grad_(False)
            kept[step] = snapshot
            if on_checkpoint is not None:
                on_checkpoint(step, snapshot)
        return False

    schedule = Schedule(lr=config.lr, warmup=config.warmup, total=max(config.steps, 1))
    train(
        trainable_copy(model.hf),
        sampler,
        steps=max(config.checkpoints, default=0),
        schedule=schedule,
        seed=config.seed,
        on_step=keep,
        progress=progress,
        desc=f"pretrain seed={config.seed} noise={config.label_noise:g}",
    )
    return Trajectory(kept)


def mixture_weights(
    main: Sequence[SyntheticTask], *shares: tuple[Sequence[SyntheticTask], float]
) -> tuple[list[SyntheticTask], list[float]]:
    """Tasks and per-task weights: each ``(tasks, share)`` gets ``share`` of every batch split evenly among
    its tasks, ``main`` the rest."""
    rest = 1.0 - sum(share for tasks, share in shares if tasks)
    tasks, weights = list(main), [rest / len(main)] * len(main)
    for extra, share in shares:
        if extra and share > 0:
            tasks += list(extra)
            weights += [share / len(extra)] * len(extra)
    return tasks, weights
