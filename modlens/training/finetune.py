"""Fine-tuning on any task, stopping once a target accuracy is reached, with optional replay and an optional
fixed-budget snapshot (the same number of steps for every model, so step count cannot pass for modularity), by any
registered method (``modlens.training.methods``: full, upper layers, LoRA, singular values, proxy-tuning)."""

import copy
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar, overload

import numpy as np
import pandas as pd
import torch
from torch import nn

from modlens.errors import ConfigError
from modlens.models.model import Model
from modlens.tasks.batch import Batch
from modlens.tasks.metrics import answer_accuracy, loss
from modlens.tasks.synthetic import SyntheticTask, sample_mixture
from modlens.training.loop import Schedule, train
from modlens.training.methods import Method, Proxy, ProxyModel, method_named

M = TypeVar("M", Model, ProxyModel)


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
        fixed_steps: also keep the model after exactly this many steps (training on past the target, or past
            ``max_steps``, when needed): the fixed-budget arm.
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
    fixed_steps: int | None = None

    def __post_init__(self) -> None:
        if self.max_steps <= 0:
            raise ConfigError(f"max_steps must be positive, got {self.max_steps}")
        if not 0.0 < self.target_accuracy <= 1.0:
            raise ConfigError(f"target_accuracy must be in (0, 1], got {self.target_accuracy}")
        if not 0.0 <= self.replay_fraction < 1.0:
            raise ConfigError(f"replay_fraction must be in [0, 1), got {self.replay_fraction}")
        if self.eval_every <= 0:
            raise ConfigError(f"eval_every must be positive, got {self.eval_every}")
        if self.fixed_steps is not None and self.fixed_steps <= 0:
            raise ConfigError(f"fixed_steps must be positive, got {self.fixed_steps}")


@dataclass(frozen=True)
class FinetuneResult(Generic[M]):
    """A fine-tuned model and how it got there.

    Attributes:
        model: the fine-tuned model when it reached the target, or after ``max_steps`` (the input model is
            untouched): a ``Model`` (LoRA and SVF merged into its weights), or a ``ProxyModel`` for proxy-tuning.
        steps: optimiser steps behind ``model``.
        reached_target: whether validation accuracy reached the target within ``max_steps``.
        history: one row per validation check: ``step``, ``val_loss``, ``val_accuracy``.
        fixed_budget: the model after exactly ``config.fixed_steps`` steps, when asked for.
        method: the method's name (``modlens.names.FINETUNE_METHODS``).
        adapter: the method's own trained parameters behind ``model``: SVF's scale vectors (``Scales``, module
            name -> ``z``), LoRA's factors (peft parameter name -> tensor); empty for full, upper and proxy.
    """

    model: M
    steps: int
    reached_target: bool
    history: pd.DataFrame
    fixed_budget: M | None = None
    method: str = "full"
    adapter: dict[str, torch.Tensor] = field(default_factory=dict)


Data = SyntheticTask | Sequence[SyntheticTask] | Batch


# Proxy is a Method: the more specific overload comes first, as mypy resolves them in order.
@overload
def finetune(  # type: ignore[overload-overlap]
    model: Model,
    data: Data,
    config: FinetuneConfig,
    *,
    method: Proxy,
    replay: Sequence[SyntheticTask] = (),
    replay_weights: Sequence[float] | None = None,
    val: Batch | None = None,
    progress: bool = True,
) -> FinetuneResult[ProxyModel]: ...


@overload
def finetune(
    model: Model,
    data: Data,
    config: FinetuneConfig,
    *,
    method: str | Method = "full",
    replay: Sequence[SyntheticTask] = (),
    replay_weights: Sequence[float] | None = None,
    val: Batch | None = None,
    progress: bool = True,
) -> FinetuneResult[Model]: ...


def finetune(
    model: Model,
    data: Data,
    config: FinetuneConfig,
    *,
    method: str | Method = "full",
    replay: Sequence[SyntheticTask] = (),
    replay_weights: Sequence[float] | None = None,
    val: Batch | None = None,
    progress: bool = True,
) -> FinetuneResult:
    """Fine-tunes a copy of ``model`` until validation accuracy reaches the target or the budget ends.

    Args:
        model: the base model (not modified).
        method: how: a name from ``modlens.names.FINETUNE_METHODS`` (with the method's default options) or a
            method object with options (``Upper(upper_from=3)``, ``Lora(rank=4)``, ``Svf(targets=...)``,
            ``Proxy(expert=small)``; proxy-tuning always needs the object, for its expert). Only the parameters
            in the method's scope change; the validation check judges the logits of what is returned.
        data: synthetic task(s) to sample from, or a fixed ``Batch`` (e.g. a prompt file) to draw
            minibatches from.
        config: budget, target and optimiser settings.
        replay: tasks mixed into every batch at ``config.replay_fraction`` (fights forgetting).
        replay_weights: relative weights of the replay tasks (default: equal), e.g. the pretraining corpus's.
        val: validation batch; by default the ``"val"`` split of ``data`` (required for a fixed Batch).
        progress: show a progress bar.
    """
    how = method_named(method) if isinstance(method, str) else method
    sampler, default_val = _data(data, replay, replay_weights, config)
    val = (val if val is not None else default_val).to(model.device)
    history: list[dict[str, float]] = []
    kept: dict[str, tuple[int, nn.Module]] = {}
    reached = False

    @torch.no_grad()
    def check(step: int, hf: nn.Module) -> bool:
        nonlocal reached
        if step == config.fixed_steps:
            kept["fixed"] = (step, _frozen(hf))
        if "target" not in kept and (step % config.eval_every == 0 or step == config.max_steps):
            hf.eval()
            logits = how.logits(model, hf, val.tokens)
            acc = float(answer_accuracy(logits, val))
            history.append({"step": step, "val_loss": float(loss(logits, val)), "val_accuracy": acc})
            hf.train()
            if acc >= config.target_accuracy or step == config.max_steps:
                kept["target"] = (step, _frozen(hf))
                reached = acc >= config.target_accuracy
        return "target" in kept and (config.fixed_steps is None or "fixed" in kept)

    hf = how.trainable(model)
    train(
        hf,
        sampler,
        steps=max(config.max_steps, config.fixed_steps or 0),
        schedule=Schedule(lr=config.lr, warmup=config.warmup, decay_to=1.0, total=config.max_steps),
        seed=config.seed,
        on_step=check,
        progress=progress,
        desc="finetune",
    )
    steps, trained = kept["target"]
    # full fine-tunes keep their historical source label; the others name their method
    label = "finetuned" if how.name == "full" else f"finetuned:{how.name}"
    tuned = how.result(model, trained, f"{model.source}+{label}")
    fixed = None
    if "fixed" in kept:
        fixed = how.result(model, kept["fixed"][1], f"{model.source}+{label}@{config.fixed_steps}")
    return FinetuneResult(tuned, steps, reached, pd.DataFrame(history), fixed, how.name, how.adapter(trained))


def _frozen(hf: nn.Module) -> nn.Module:
    """An eval-mode copy with gradients off: a snapshot that further training leaves alone."""
    snapshot = copy.deepcopy(hf).eval()
    for p in snapshot.parameters():
        p.requires_grad_(False)
    return snapshot


def _data(
    data: Data,
    replay: Sequence[SyntheticTask],
    replay_weights: Sequence[float] | None,
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
    relative = np.asarray(replay_weights if replay_weights is not None else [1.0] * len(replay), dtype=float)
    if len(relative) != len(replay) or (replay and (relative.min() < 0 or relative.sum() <= 0)):
        raise ConfigError("replay_weights must give one non-negative weight per replay task, not all zero")
    weights = [(1 - share) / len(tasks)] * len(tasks) + [share * w / relative.sum() for w in relative]

    def draw(step: int) -> Batch:
        return sample_mixture(
            mix, config.batch_size, split="train", seed=config.seed * 7_000_003 + step, weights=weights
        )

    stream = (tuple(mix), tuple(weights), config.batch_size, config.seed)
    return _remembered(stream, draw), sample_mixture(tasks, config.n_val, split="val", seed=config.seed)


_STREAMS: "OrderedDict[tuple, dict[int, Batch]]" = OrderedDict()
_MAX_STREAMS = 4


def _remembered(stream: tuple, draw: Callable[[int], Batch]) -> Callable[[int], Batch]:
    """``draw`` with its batches kept for the next fine-tune of the same stream (tasks, weights, batch size, seed).

    Drawing a mixture of synthetic tasks is pure Python per task and per step (a tenth of a study unit's time),
    and the study draws every stream many times over: one run per learning rate, the fixed-budget rerun, every
    method and checkpoint a worker process fine-tunes. Batches are a deterministic function of the step, so the
    kept ones are the ones ``draw`` would return. The last ``_MAX_STREAMS`` streams are kept (a few MB each).
    """
    try:
        hash(stream)
    except TypeError:  # a task that cannot be a key (none of modlens's): draw every time
        return draw
    if stream in _STREAMS:
        _STREAMS.move_to_end(stream)
    else:
        _STREAMS[stream] = {}
        while len(_STREAMS) > _MAX_STREAMS:
            _STREAMS.popitem(last=False)
    kept = _STREAMS[stream]

    def sampler(step: int) -> Batch:
        if step not in kept:
            kept[step] = draw(step)
        return kept[step]

    return sampler
