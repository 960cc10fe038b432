"""The part a task needs: the smallest set of heads and neurons whose removal breaks it and spares the rest.

A subnetwork mask (``fit_mask``) is *sufficient*: run alone it does the task. It therefore also holds the
machinery every task shares (reading positions, copying digits), and removing it breaks everything, so it
cannot tell which tasks run through which part. A removal mask is *necessary* and *specific*: learned to
break the target task while other tasks keep working (continuous sparsification over removal logits, the
mirror of Lepori et al.'s subnetwork masks), it isolates what the target needs beyond the shared machinery.
The reuse test ablates such parts (``modlens.modularity.reuse``).
"""

import math
from dataclasses import dataclass

import numpy as np
import torch

from modlens._typing import Tensor
from modlens.masks.apply import Reference, baselines_for, install, masked_logits
from modlens.masks.chance import chance_accuracy
from modlens.masks.mask import Mask, MaskError, shape_of
from modlens.models.model import Model
from modlens.tasks.batch import Batch
from modlens.tasks.metrics import Metric, answer_accuracy, loss


def fit_removal_mask(
    model: Model,
    target: Batch,
    keep: Batch,
    *,
    reference: Reference | None = None,
    steps: int = 100,
    seed: int = 0,
    batch_size: int = 32,
    size_weight: float = 0.5,
    break_weight: float = 0.5,
    lr: float = 0.05,
    init: float = -1.0,
    max_temperature: float = 200.0,
) -> Mask:
    """Learns the heads and neurons whose mean ablation breaks ``target`` while ``keep`` still works.

    Objective per step: ``loss(keep) + break_weight · hinge(target) + size_weight · removed fraction``, with
    the removed fraction ``sigmoid(T r)`` annealed from ``T = 1`` to ``max_temperature`` (continuous
    sparsification); the final part is ``r > 0``. The target term is the mean hinge ``max(0, logit of the
    answer − best other logit + 1)`` over answer tokens: unlike the answer's probability it does not saturate
    where the model is sure, unlike ``-log(1 - p)`` it does not explode there, and it vanishes once the
    answer is lost, so breaking the target never outweighs keeping the rest.

    Args:
        model: the model (never modified).
        target: examples of the task the part should carry.
        keep: examples of the tasks it should spare (same sequence length).
        reference: what removed units are replaced by: their means over this batch (default: ``keep``).
        steps: optimiser steps; each runs one forward pass over ``batch_size`` examples of each batch.
        seed: seed of the minibatch order.
        batch_size: examples drawn from each batch per step.
        size_weight: weight of the removed fraction (larger: smaller parts).
        break_weight: weight of the target's answer probability.
        lr: Adam learning rate of the removal logits.
        init: initial removal logit (negative: start by removing nothing).
        max_temperature: the last step's temperature.

    Returns:
        A component mask holding the part (the units to remove); ablate it with ``keep="outside"``.
    """
    if steps < 1:
        raise MaskError(f"steps must be a positive number of optimiser steps, got {steps}")
    if target.n_pos != keep.n_pos:
        raise MaskError(f"target and keep batches differ in length ({target.n_pos} vs {keep.n_pos} tokens)")
    spec = model.spec
    shapes = {"head": (spec.n_layers, spec.n_heads), "neuron": (spec.n_layers, spec.d_mlp)}
    device, dtype = model.device, model.dtype
    logits = {k: torch.full(s, float(init), device=device, requires_grad=True) for k, s in shapes.items()}
    n_units = sum(math.prod(s) for s in shapes.values())
    baselines = baselines_for(model, reference if reference is not None else keep)
    values: dict[str, Tensor] = {k: torch.ones((1, *s), device=device, dtype=dtype) for k, s in shapes.items()}
    opt = torch.optim.Adam(list(logits.values()), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    with install(model, "component", values, baselines) as bridge:
        for step in range(steps):
            temperature = max_temperature ** (step / max(1, steps - 1))
            removed = {k: torch.sigmoid(temperature * v) for k, v in logits.items()}
            values.update({k: (1 - v).to(dtype)[None] for k, v in removed.items()})
            t = target[torch.randperm(len(target), generator=gen)[:batch_size]].to(device)
            k = keep[torch.randperm(len(keep), generator=gen)[:batch_size]].to(device)
            out = bridge(torch.cat([t.tokens, k.tokens]))
            size = sum(v.sum() for v in removed.values()) / n_units
            total = loss(out[len(t) :], k) + break_weight * _answer_hinge(out[: len(t)], t)
            total = total + size_weight * size
            opt.zero_grad(set_to_none=True)
            total.backward()
            opt.step()
    part = {k: v.detach() > 0 for k, v in logits.items()}
    meta = {"kind": "removal", "task": target.task, "seed": seed, "steps": steps, "size_weight": size_weight}
    return Mask("component", part, shape_of(spec), meta=meta)


def _answer_hinge(logits: Tensor, batch: Batch, margin: float = 1.0) -> Tensor:
    """Mean ``max(0, answer logit − best other logit + margin)`` over the answer tokens."""
    pred, target, mask = logits[:, :-1].float(), batch.tokens[:, 1:], batch.answer_mask[:, 1:]
    right = pred.gather(-1, target.unsqueeze(-1)).squeeze(-1)
    best_other = pred.scatter(-1, target.unsqueeze(-1), float("-inf")).amax(-1)
    hinge = torch.relu(right - best_other + margin)
    return (hinge * mask).sum() / mask.sum().clamp_min(1)


@dataclass(frozen=True)
class Necessity:
    """The gate for a removal mask: does removing the part break its task, and selectively, unlike a random part?

    Attributes:
        full: the model's accuracy on the task.
        removed: the fraction of that accuracy the part's removal takes away (NaN when ``full`` is 0).
        selectivity: ``removed`` minus the fraction it takes away from the other tasks.
        random_selectivity: the same for random parts with as many units in each group.
        passed: whether the part may be scored.
        reason: why it failed (empty when it passed).
    """

    full: float
    removed: float
    selectivity: float
    random_selectivity: tuple[float, ...]
    passed: bool
    reason: str


@torch.no_grad()
def check_necessity(
    model: Model,
    part: Mask,
    own: Batch,
    others: Batch,
    *,
    reference: Reference | None = None,
    n_random: int = 5,
    min_removed: float = 0.8,
    min_margin: float = 0.2,
    seed: int = 0,
    metric: Metric = answer_accuracy,
) -> Necessity:
    """The mirror of the faithfulness gate for a removal mask.

    It passes when the full model scores above chance on ``own``, removing the part takes away at least
    ``min_removed`` of that accuracy, and its *selectivity* (what it takes from ``own`` minus what it takes
    from ``others``) beats the mean selectivity of ``n_random`` same-size random parts by ``min_margin``.
    Selectivity, not raw damage, is compared: in a small model a few random heads can break every task at
    once, which says nothing about where one task lives. The mean, not the best, random part is the bar: with
    few heads per layer a random draw is the learned head itself a fair share of the time.
    """
    full = {name: float(metric(model.logits(b.tokens), b)) for name, b in (("own", own), ("others", others))}

    def removed_by(units: Mask, name: str, batch: Batch) -> float:
        ablated = masked_logits(model, units, batch, keep="outside", replacement="mean", reference=reference)
        return 1.0 - float(metric(ablated, batch)) / full[name] if full[name] > 0 else float("nan")

    def selectivity(units: Mask) -> tuple[float, float]:
        removed = removed_by(units, "own", own)
        return removed, removed - removed_by(units, "others", others)

    removed, selective = selectivity(part)
    randoms = tuple(selectivity(part.random_like(seed * 1000 + i))[1] for i in range(n_random))
    reason = ""
    if full["own"] <= chance_accuracy(own) + 0.05:
        reason = f"the full model is at chance ({full['own']:.2f})"
    elif part.size == 0:
        reason = "the part is empty"
    elif removed < min_removed:
        reason = f"removing it takes away {removed:.2f} of the accuracy (< {min_removed})"
    elif float(np.mean(randoms)) > selective - min_margin:
        reason = f"random parts of the same size are about as selective ({np.mean(randoms):.2f} vs {selective:.2f})"
    return Necessity(full["own"], removed, selective, randoms, not reason, reason)
