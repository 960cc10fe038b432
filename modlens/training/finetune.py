"""Fine-tuning on any task, stopping once a target accuracy is reached, with optional replay."""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from transformers import PreTrainedModel

from modlens.errors import ConfigError
from modlens.models.model import Model
from modlens.tasks.batch import Batch
from modlens.tasks.metrics import answer_accuracy, loss
from modlens.tasks.synthetic import SyntheticTask, sample_mixture
from modlens.training.loop import Schedule, train, trainable_copy


@dataclass(frozen=True, kw_only=True)
class FinetuneConfig:
    """Fine-tuning settings.

    Attributes:
        max_steps: step budget.
        target_accuracy: stop once whole-answer accuracy on the validation batch reaches this.
        eval_every: steps between validation checks.
        batch_size: sequences per step.
        lr: learning rate (constant after warm-up).
        warmup: warm-up steps.
        replay_fraction: share of each batch drawn from the replay tasks (e.g. the primitives).
        n_val: validation examples.
        seed: data seed.
    """

    max_steps: int = 2000
    target_accuracy: float = 0.9
    eval_every: int = 50
    batch_size: int = 64
    lr: float = 1e-3
    warmup: int = 20
    replay_fraction: float = 0.0
    n_val: int = 512
    seed: int = 0

    def __post_init__(self) -> None:
        if self.max_steps <= 0:
            raise ConfigError(f"max_steps must be positive, got {self.max_steps}")
        if not 0.0 < self.target_accuracy <= 1.0:
            raise ConfigError(f"target_accuracy must be in (0, 1], got {self.target_accuracy}")
        if not 0.0 <= self.replay_fraction < 1.0:
            raise ConfigError(f"replay_fraction must be in [0, 1), got {self.replay_fraction}")
        if self.eval_every <= 0:
            raise ConfigError(f"eval_every must be positive, got {self.eval_every}")


@dataclass(frozen=True)
class FinetuneResult:
    """A fine-tuned model and how it got there.

    Attributes:
        model: the fine-tuned model (the input model is untouched).
        steps: optimiser steps used.
        reached_target: whether validation accuracy reached the target within the budget.
        history: one row per validation check: ``step``, ``val_loss``, ``val_accuracy``.
    """

    model: Model
    steps: int
    reached_target: bool
    history: pd.DataFrame


def finetune(
    model: Model,
    data: SyntheticTask | Sequence[SyntheticTask] | Batch,
    config: FinetuneConfig,
    *,
    replay: Sequence[SyntheticTask] = (),
    val: Batch | None = None,
    progress: bool = True,
) -> FinetuneResult:
    """Fine-tunes a copy of ``model`` until validation accuracy reaches the target or the budget ends.

    Args:
        model: the base model (not modified).
        data: synthetic task(s) to sample from, or a fixed ``Batch`` (e.g. a prompt file) to draw
            minibatches from.
        config: budget, target and optimiser settings.
        replay: tasks mixed into every batch at ``config.replay_fraction`` (fights forgetting).
        val: validation batch; by default the ``"val"`` split of ``data`` (required for a fixed Batch).
        progress: show a progress bar.
    """
    sampler, default_val = _data(data, replay, config)
    val = (val if val is not None else default_val).to(model.device)
    history: list[dict[str, float]] = []
    reached = False

    @torch.no_grad()
    def check(step: int, hf: PreTrainedModel) -> bool:
        nonlocal reached
        if step % config.eval_every and step != config.max_steps:
            return False
        hf.eval()
        logits = hf(val.tokens).logits
        acc = float(answer_accuracy(logits, val))
        history.append({"step": step, "val_loss": float(loss(logits, val)), "val_accuracy": acc})
        hf.train()
        reached = acc >= config.target_accuracy
        return reached

    hf = trainable_copy(model.hf)
    steps = train(
        hf,
        sampler,
        steps=config.max_steps,
        schedule=Schedule(lr=config.lr, warmup=config.warmup, decay_to=1.0, total=config.max_steps),
        seed=config.seed,
        on_step=check,
        progress=progress,
        desc="finetune",
    )
    for p in hf.parameters():
        p.requires_grad_(False)
    tuned = model.with_weights(hf.eval(), source=f"{model.source}+finetuned")
    return FinetuneResult(tuned, steps, reached, pd.DataFrame(history))


def _data(
    data: SyntheticTask | Sequence[SyntheticTask] | Batch,
    replay: Sequence[SyntheticTask],
    config: FinetuneConfig,
):
    if isinstance(data, Batch):
        if replay:
            raise ConfigError("replay needs synthetic tasks, not a fixed batch")
        rng_seed = config.seed

        def fixed(step: int) -> Batch:
            rng = np.random.default_rng([rng_seed, step])
            return data[torch.from_numpy(rng.integers(0, len(data), size=config.batch_size))]

        return fixed, data
    tasks = [data] if isinstance(data, SyntheticTask) else list(data)
    if not tasks:
        raise ConfigError("fine-tuning needs at least one task")
    share = config.replay_fraction if replay else 0.0
    mix = tasks + list(replay)
    weights = [(1 - share) / len(tasks)] * len(tasks) + ([share / len(replay)] * len(replay) if replay else [])

    def sampler(step: int) -> Batch:
        return sample_mixture(
            mix, config.batch_size, split="train", seed=config.seed * 7_000_003 + step, weights=weights
        )

    return sampler, sample_mixture(tasks, config.n_val, split="val", seed=config.seed)
