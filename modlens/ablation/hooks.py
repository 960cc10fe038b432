"""Ablation as TransformerLens hooks on the bridge: ``ablate`` (a context manager), the hook list it adds, and the
plain engine that edits one site per hooked forward (the reference of every fast path, and the path for
architectures without one)."""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch

from modlens import names
from modlens._typing import Tensor
from modlens.components import Component
from modlens.interventions.bridge import Hook, reference_activations, replacing_hook
from modlens.interventions.replacements import (
    InterventionError,
    Replacement,
    Site,
    SiteBuilder,
    at_position,
    check_replacement,
    needs_reference,
    replacement_fn,
)
from modlens.models import Model, check_finite
from modlens.tasks import Batch
from modlens.tasks.metrics import Metric


def ablation_hooks(
    model: Model,
    components: Sequence[Component],
    *,
    replacement: Replacement = "mean",
    reference: Batch | None = None,
    seed: int = 0,
) -> list[Hook]:
    """``(hook_name, fn)`` pairs that ablate every component at once (for ``bridge.run_with_hooks``).

    Replacement values come from the *unablated* model on ``reference`` (mean and resample) and are
    fixed before any hook runs, so ablating several components is simultaneous, not sequential.

    Raises:
        InterventionError: unknown replacement, or no reference for a replacement that needs one.
        ComponentError: a component out of the model's range.
    """
    check_replacement(replacement, names.REPLACEMENTS)
    for c in components:
        c.check(model.spec)
    if needs_reference(replacement) and reference is None:
        raise InterventionError(f"{replacement} ablation needs a reference batch")
    refs: dict[Component, Tensor] = {}
    if needs_reference(replacement) and components:
        assert reference is not None
        refs = reference_activations(model, reference.tokens, components)
    return [replacing_hook(c, replacement_fn(replacement, refs.get(c), seed=seed)) for c in components]


@contextmanager
def ablate(
    model: Model,
    components: Sequence[Component],
    *,
    replacement: Replacement = "mean",
    reference: Batch | None = None,
    seed: int = 0,
) -> Iterator[Any]:
    """Ablates components on ``model.bridge`` inside a ``with`` block; yields the bridge.

    The hooks are removed when the block exits, exceptions included; hooks added by others stay.

    Example:
        >>> with ablate(model, parse_components(["L0H1", "L1.mlp"]), replacement="mean", reference=batch) as bridge:
        ...     logits = bridge(batch.tokens)

    Args:
        model: the model; its bridge is hooked.
        components: what to ablate (all at once).
        replacement: ``"zero"``, ``"mean"`` (per-position mean over ``reference``) or ``"resample"``
            (another reference row's values, seeded); see ``modlens.interventions.replacements``.
        reference: the batch whose activations supply mean and resample values.
        seed: resample seed.
    """
    hooks = ablation_hooks(model, components, replacement=replacement, reference=reference, seed=seed)
    with model.bridge.hooks(fwd_hooks=hooks) as bridge:
        yield bridge


@torch.no_grad()
def run_sites_by_hooks(
    model: Model, batch: Batch, sites: Sequence[Site], build: SiteBuilder, *, metric: Metric, reference: Batch | None
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
    cached = reference_activations(model, source.tokens, components) if components else {}
    edited = []
    for c, position in sites:
        replace = build(c, cached[c])
        hook = replacing_hook(c, replace if position is None else at_position(replace, position))
        edited.append(float(metric(bridge.run_with_hooks(batch.tokens, fwd_hooks=[hook]), batch)))
    return clean, edited
