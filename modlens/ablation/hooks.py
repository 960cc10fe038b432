"""Edits as TransformerLens hooks on the bridge: ``ablate`` (a context manager), the hook list it adds, and the
plain engine that edits one site per hooked forward (the reference of every fast path, and the path for
architectures without one)."""

import functools
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch

from modlens._typing import Tensor
from modlens.ablation.methods import (
    AblationError,
    Builder,
    Method,
    Replacement,
    Site,
    at_position,
    needs_reference,
    replacement,
)
from modlens.components import Component
from modlens.models import Model, check_finite
from modlens.tasks import Batch
from modlens.tasks.metrics import Metric

Hook = tuple[str, Any]


def component_values(activation: Tensor, component: Component) -> Tensor:
    """The slice of a hook activation that belongs to one component (``[batch, pos, ...]``)."""
    if component.kind in ("head", "neuron"):
        return activation[:, :, component.index]
    return activation


@torch.no_grad()
def reference_activations(model: Model, reference: Batch, components: Sequence[Component]) -> dict[Component, Tensor]:
    """Each component's activation on the (unablated) reference batch, read through the bridge."""
    names = sorted({c.hook_name for c in components})
    _, cache = model.bridge.run_with_cache(reference.tokens.to(model.device), names_filter=names)
    return {c: component_values(cache[c.hook_name], c) for c in components}


def _replace(activation: Tensor, hook: Any, *, component: Component, values: Replacement) -> Tensor:
    out = activation.clone()
    if component.kind in ("head", "neuron"):
        part = out[:, :, component.index]
        out[:, :, component.index] = values(part).to(part.dtype)
    else:
        out[:] = values(activation).to(activation.dtype)
    return out


def ablation_hooks(
    model: Model,
    components: Sequence[Component],
    *,
    method: Method = "mean",
    reference: Batch | None = None,
    seed: int = 0,
) -> list[Hook]:
    """``(hook_name, fn)`` pairs that ablate every component at once (for ``bridge.run_with_hooks``).

    Replacement values come from the *unablated* model on ``reference`` (mean and resample) and are
    fixed before any hook runs, so ablating several components is simultaneous, not sequential.

    Raises:
        AblationError: unknown method, or no reference for a method that needs one.
        ComponentError: a component out of the model's range.
    """
    for c in components:
        c.check(model.spec)
    if needs_reference(method) and reference is None:
        raise AblationError(f"{method} ablation needs a reference batch")
    refs: dict[Component, Tensor] = {}
    if needs_reference(method) and components:
        assert reference is not None
        refs = reference_activations(model, reference, components)
    return hooks_from_reference(components, method=method, reference=refs, seed=seed)


def hooks_from_reference(
    components: Sequence[Component], *, method: str, reference: dict[Component, Tensor], seed: int = 0
) -> list[Hook]:
    """``ablation_hooks`` with the reference activations already read (``reference_activations``)."""
    return [replacing_hook(c, replacement(method, reference.get(c), seed=seed)) for c in components]


def replacing_hook(component: Component, values: Replacement) -> Hook:
    """The ``(hook_name, fn)`` pair that replaces ``component``'s activation with ``values(activation)``."""
    return component.hook_name, functools.partial(_replace, component=component, values=values)


@contextmanager
def ablate(
    model: Model,
    components: Sequence[Component],
    *,
    method: Method = "mean",
    reference: Batch | None = None,
    seed: int = 0,
) -> Iterator[Any]:
    """Ablates components on ``model.bridge`` inside a ``with`` block; yields the bridge.

    The hooks are removed when the block exits, exceptions included; hooks added by others stay.

    Example:
        >>> with ablate(model, parse_components(["L0H1", "L1.mlp"]), method="mean", reference=batch) as bridge:
        ...     logits = bridge(batch.tokens)

    Args:
        model: the model; its bridge is hooked.
        components: what to ablate (all at once).
        method: ``"zero"``, ``"mean"`` (per-position mean over ``reference``) or ``"resample"``
            (another reference row's values, seeded).
        reference: the batch whose activations supply mean and resample values.
        seed: resample seed.
    """
    hooks = ablation_hooks(model, components, method=method, reference=reference, seed=seed)
    with model.bridge.hooks(fwd_hooks=hooks) as bridge:
        yield bridge


@torch.no_grad()
def run_sites_by_hooks(
    model: Model, batch: Batch, sites: Sequence[Site], build: Builder, *, metric: Metric, reference: Batch | None
) -> tuple[float, list[float]]:
    """``run_sites``'s result through bridge hooks: the reference run cached once (as TransformerLens's patching
    helpers take a cache), then a full hooked forward per site."""
    components = list(dict.fromkeys(c for c, _ in sites))
    for c in components:
        c.check(model.spec)
    bridge = model.bridge
    batch = batch.to(model.device)
    logits = bridge(batch.tokens)
    check_finite(logits, "the model's logits on the unedited batch")
    clean = float(metric(logits, batch))
    source = reference if reference is not None else batch
    cached = reference_activations(model, source.to(model.device), components) if components else {}
    edited = []
    for c, position in sites:
        replace = build(c, cached[c])
        hook = replacing_hook(c, replace if position is None else at_position(replace, position))
        edited.append(float(metric(bridge.run_with_hooks(batch.tokens, fwd_hooks=[hook]), batch)))
    return clean, edited
