"""The one training loop behind pretraining and fine-tuning: AdamW on the plain HF module, seeded."""

import copy
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import torch
from torch import nn
from transformers import PreTrainedModel

from modlens.progress import progress_bar
from modlens.tasks.batch import Batch
from modlens.tasks.metrics import loss

log = logging.getLogger(__name__)

Sampler = Callable[[int], Batch]
"""``sampler(step) -> Batch``: the training batch for a step (deterministic in the step)."""


@dataclass(frozen=True, kw_only=True)
class Schedule:
    """Optimiser settings.

    Attributes:
        lr: peak learning rate.
        warmup: linear warm-up steps.
        decay_to: final learning rate as a fraction of ``lr`` (cosine decay over ``total`` steps).
        total: steps the cosine spans (the full trajectory, so checkpoints lie on one schedule).
        weight_decay: AdamW weight decay.
        grad_clip: gradient-norm clip.
    """

    lr: float = 1e-3
    warmup: int = 100
    decay_to: float = 0.1
    total: int = 1000
    weight_decay: float = 0.01
    grad_clip: float = 1.0

    def factor(self, step: int) -> float:
        if step < self.warmup:
            return (step + 1) / self.warmup
        frac = min(1.0, (step - self.warmup) / max(1, self.total - self.warmup))
        return self.decay_to + (1 - self.decay_to) * 0.5 * (1 + math.cos(math.pi * frac))


def trainable_copy(hf: PreTrainedModel) -> PreTrainedModel:
    """A deep copy of ``hf`` in train mode with gradients on, leaving the original untouched."""
    model = copy.deepcopy(hf)
    for p in model.parameters():
        p.requires_grad_(True)
    return model.train()


H = TypeVar("H", bound=nn.Module)


def train(
    hf: H,
    sampler: Sampler,
    *,
    steps: int,
    schedule: Schedule,
    seed: int,
    on_step: Callable[[int, H], bool] | None = None,
    progress: bool = True,
    desc: str = "train",
) -> int:
    """Trains ``hf`` in place on answer-token cross-entropy for up to ``steps`` steps.

    Args:
        hf: a module in train mode whose output has ``.logits`` (a HF model, see ``trainable_copy``, or one a
            fine-tuning method wrapped); only parameters with ``requires_grad`` train.
        sampler: batch for each step.
        steps: maximum number of optimiser steps.
        schedule: learning-rate schedule and optimiser settings.
        seed: seeds anything random inside the model (dropout); data randomness lives in ``sampler``.
        on_step: called as ``on_step(steps_done, hf)`` before the first step and after every step;
            returning True stops training early.
        progress: show a tqdm bar.
        desc: the bar's label.

    Returns:
        The number of optimiser steps taken.
    """
    device = next(hf.parameters()).device
    # only what the fine-tuning method left trainable: frozen weights get no weight decay and no optimiser state
    params = [p for p in hf.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=schedule.lr, weight_decay=schedule.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule.factor)
    done = 0
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if on_step is not None and on_step(0, hf):
            return 0
        bar = progress_bar(range(steps), enabled=progress, desc=desc, leave=False)
        for step in bar:
            batch = sampler(step).to(device)
            value = loss(hf(batch.tokens).logits, batch)
            opt.zero_grad(set_to_none=True)
            value.backward()
            torch.nn.utils.clip_grad_norm_(params, schedule.grad_clip)
            opt.step()
            sched.step()
            done = step + 1
            if step % 50 == 0:
                bar.set_postfix(loss=f"{value.item():.3f}")
            if on_step is not None and on_step(done, hf):
                break
    return done
