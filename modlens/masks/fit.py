"""``fit_mask``: learn the sparse subnetwork of a frozen model that keeps a subroutine's performance."""

import logging
import math
import time
import warnings
from typing import Any, Literal

import torch

from modlens import names
from modlens._typing import Tensor
from modlens.interventions.replacements import Replacement
from modlens.masks.apply import Reference, baselines_for, install, weight_layouts, weight_shapes
from modlens.masks.chance import at_chance, chance_accuracy
from modlens.masks.continuous_sparsification import ContinuousSparsification
from modlens.masks.hard_concrete import HardConcrete
from modlens.masks.mask import GRANULARITIES, Mask, MaskError, shape_of
from modlens.models.model import Model, check_finite
from modlens.progress import progress_bar
from modlens.tasks.batch import Batch
from modlens.tasks.metrics import Metric, answer_accuracy, loss

log = logging.getLogger(__name__)

Algorithm = Literal["continuous_sparsification", "hard_concrete"]
"""A mask-learning algorithm's name (``modlens.names.ALGORITHMS``)."""
ALGORITHMS: dict[Algorithm, type[ContinuousSparsification] | type[HardConcrete]] = {
    "continuous_sparsification": ContinuousSparsification,
    "hard_concrete": HardConcrete,
}
"""Mask-learning algorithms by name; each class's defaults follow its paper (see RESEARCH.md §1)."""


def fit_mask(
    model: Model,
    batch: Batch,
    *,
    granularity: str = "component",
    algorithm: str = "continuous_sparsification",
    sparsity: float = 0.5,
    steps: int = 200,
    seed: int = 0,
    replacement: Replacement = "mean",
    batch_size: int = 64,
    lr: float | None = None,
    init: float | None = None,
    n_samples: int | None = None,
    objective: Metric = loss,
    reference: Reference | None = None,
    progress: bool = False,
) -> Mask:
    """Learns a mask over the frozen model's heads and neurons (or weights) for the subroutine in ``batch``.

    The objective is ``(1 - sparsity) * objective(masked logits) + sparsity * mean mask density``:
    keep the subroutine's performance while keeping as few units as possible.

    Args:
        model: the model (never modified).
        batch: examples of the subroutine.
        granularity: ``"component"`` (one logit per attention head and MLP neuron, through hooks) or
            ``"weight"`` (one logit per weight of every attention and MLP matrix, through parametrizations).
        algorithm: ``"continuous_sparsification"`` or ``"hard_concrete"`` (see ``ALGORITHMS``).
        sparsity: weight of the size penalty, in (0, 1).
        steps: optimiser steps.
        seed: seed of the minibatch order and the mask noise.
        replacement: what removed heads and neurons become during training: ``"zero"`` or ``"mean"`` (their
            mean over ``reference``, per position). Weight masks always use zero.
        batch_size: examples per step (the whole batch when smaller).
        lr: Adam learning rate of the logits (default: the algorithm's).
        init: initial logit (default: the algorithm's).
        n_samples: mask samples per step for ``"hard_concrete"`` (default 4; continuous
            sparsification is deterministic and always uses one).
        objective: the differentiable task loss (lower is better).
        reference: the batch the mean baseline is taken over (default: ``batch``), or its means from
            ``mean_baseline(model, reference)``; pass the same one when scoring
            (``masked_logits(..., reference=...)``) so fitting and scoring remove units alike.
        progress: show a progress bar.

    Returns:
        The final binary mask, with how it was made in ``mask.meta``.

    Raises:
        MaskError: bad options (zero steps, sparsity out of range, unknown algorithm, replacement or granularity).
    """
    if granularity not in GRANULARITIES:
        raise MaskError(f"unknown granularity {granularity!r}; choose one of {', '.join(GRANULARITIES)}")
    if algorithm not in ALGORITHMS:
        raise MaskError(f"unknown mask algorithm {algorithm!r}; choose one of {', '.join(ALGORITHMS)}")
    if replacement not in names.MASK_REPLACEMENTS:
        raise MaskError(f"unknown replacement {replacement!r}; choose one of {', '.join(names.MASK_REPLACEMENTS)}")
    if not isinstance(steps, int) or steps < 1:
        raise MaskError(f"steps must be a positive number of optimiser steps, got {steps}")
    if not (isinstance(sparsity, float | int) and 0.0 < sparsity < 1.0):
        raise MaskError(f"sparsity must lie strictly between 0 and 1 (the weight of the size penalty), got {sparsity}")
    if batch_size < 1:
        raise MaskError(f"batch_size must be positive, got {batch_size}")
    if batch.n_pos > model.spec.n_ctx:
        raise MaskError(f"batch sequences have {batch.n_pos} tokens, more than the model's context {model.spec.n_ctx}")
    overrides: dict[str, Any] = {k: v for k, v in (("lr", lr), ("init", init)) if v is not None}
    if n_samples is not None and algorithm == "hard_concrete":
        if n_samples < 1:
            raise MaskError(f"n_samples must be positive, got {n_samples}")
        overrides["n_samples"] = n_samples
    algo = ALGORITHMS[algorithm](**overrides)
    _warn_if_at_chance(model, batch)

    started = time.perf_counter()
    device, dtype = model.device, model.dtype
    shapes = _unit_shapes(model, granularity)
    logits = {k: torch.full(s, float(algo.init), device=device, requires_grad=True) for k, s in shapes.items()}
    n_units = sum(math.prod(s) for s in shapes.values())
    baselines = None
    if granularity == "component" and replacement == "mean":
        if reference is not None:
            _check_length(reference, batch)
        baselines = baselines_for(model, reference if reference is not None else batch)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(list(logits.values()), lr=algo.lr)
    # the installed masks read ``values`` at every forward; start from keep-everything so every key is known
    values: dict[str, Tensor] = {k: torch.ones(s, device=device, dtype=dtype) for k, s in shapes.items()}
    history: list[float] = []
    with install(model, granularity, values, baselines) as bridge:
        for step in progress_bar(range(steps), enabled=progress, desc=f"mask ({algorithm})"):
            idx = torch.randperm(len(batch), generator=gen)[:batch_size]
            sub = batch[idx].to(device)
            samples = {k: algo.sample(v, step, steps, gen).to(dtype) for k, v in logits.items()}
            task = _task_loss(bridge, granularity, samples, values, sub, objective, algo.n_samples)
            density = sum(algo.penalty(v, step, steps) for v in logits.values()) / n_units
            total = (1 - sparsity) * task + sparsity * density
            opt.zero_grad(set_to_none=True)
            total.backward()
            opt.step()
            history.append(float(task.detach()))
    final = {k: algo.final(v.detach()) for k, v in logits.items()}
    meta = {
        "algorithm": algorithm,
        "granularity": granularity,
        "sparsity": float(sparsity),
        "steps": steps,
        "seed": seed,
        "replacement": replacement if granularity == "component" else "zero",
        "mean_over": "reference" if reference is not None else "fitted batch",
        "lr": algo.lr,
        "init": algo.init,
        "batch_size": batch_size,
        "task": batch.task,
        "final_task_loss": history[-1],
        "seconds": round(time.perf_counter() - started, 3),
    }
    layouts = weight_layouts(model) if granularity == "weight" else {}
    mask = Mask(granularity, final, shape_of(model.spec), layouts, meta)
    log.info("fitted %s mask: %d of %d units kept in %.1f s", granularity, mask.size, mask.n_units, meta["seconds"])
    return mask


def _unit_shapes(model: Model, granularity: str) -> dict[str, tuple[int, ...]]:
    spec = model.spec
    if granularity == "component":
        return {"head": (spec.n_layers, spec.n_heads), "neuron": (spec.n_layers, spec.d_mlp)}
    return weight_shapes(model)


def _task_loss(
    bridge: Any,
    granularity: str,
    samples: dict[str, Tensor],
    values: dict[str, Tensor],
    batch: Batch,
    objective: Metric,
    n_samples: int,
) -> Tensor:
    """The objective averaged over mask samples (stacked in one forward for component masks)."""
    if granularity == "component":
        values.update(samples)
        stacked = Batch(batch.tokens.repeat(n_samples, 1), batch.answer_mask.repeat(n_samples, 1), batch.task)
        return objective(bridge(stacked.tokens), stacked)
    total = torch.zeros(())
    for s in range(n_samples):
        values.update({k: v[s] for k, v in samples.items()})
        total = total + objective(bridge(batch.tokens), batch)
    return total / n_samples


@torch.no_grad()
def _warn_if_at_chance(model: Model, batch: Batch) -> None:
    """Warns when the unmasked model scores at chance: there is no computation to localize.

    Raises:
        NonFiniteError: the unmasked model's logits hold NaN or infinity.
    """
    logits = model.logits(batch.tokens)
    check_finite(logits, "the unmasked model's logits")
    acc = float(answer_accuracy(logits, batch))
    chance = chance_accuracy(batch)
    if at_chance(acc, batch):
        warnings.warn(
            f"the model scores at chance on {batch.task or 'this task'} (accuracy {acc:.3f}, chance {chance:.3g}): "
            "there is nothing to localize, and a mask fitted here measures nothing",
            UserWarning,
            stacklevel=3,
        )


def _check_length(reference: Reference, batch: Batch) -> None:
    """The mean baseline is per position: the reference must have the fitted sequences' length."""
    if reference.n_pos != batch.n_pos:
        raise MaskError(
            f"the reference batch has sequences of {reference.n_pos} tokens, the fitted batch {batch.n_pos}; "
            "mean ablation needs one length"
        )
