"""What replaces an intervened activation: the registry ``BUILDERS`` of replacements by name.

A builder takes the component's activations on a reference run (``None`` for ``zero``) and a seed, and returns a
``ReplaceFn``: a function from the live activation ``[batch, pos, ...]`` to the values that replace it. The values
never depend on the live values, only on their shape. ``zero``, ``mean`` and ``resample`` are ablations (their
reference is a batch of inputs, often the batch itself); ``patch`` takes each row's value from another run of
paired inputs (activation patching). The names users type are in ``modlens.names`` (no torch there).
"""

from collections.abc import Callable, Iterable
from typing import Literal

import torch

from modlens._typing import Float, Int, Tensor
from modlens.components import Component
from modlens.errors import ModlensError
from modlens.interventions.alignment import Alignment, aligned_mean, aligned_resample, alignment_of
from modlens.tasks import Batch

Replacement = Literal["zero", "mean", "resample", "patch"]
"""A replacement's name; ``modlens.names.REPLACEMENTS`` lists the ablations (every one but ``patch``)."""
ReplaceFn = Callable[[Tensor], Tensor]
"""``replace(activation [batch, pos, ...]) -> values broadcastable to it``."""


class InterventionError(ModlensError):
    """An intervention cannot be set up as asked (unknown replacement, missing or misaligned reference, or a model
    the fast path cannot run)."""


def _check_positions(reference: Tensor, activation: Tensor) -> None:
    if reference.shape[1] < activation.shape[1]:
        raise InterventionError(
            f"the reference batch has {reference.shape[1]} positions, fewer than the {activation.shape[1]} "
            "being ablated; give a reference at least as long (positions align from the start)"
        )


def zero(reference: Tensor | None, *, seed: int = 0, alignment: Alignment | None = None) -> ReplaceFn:
    """Replace the activation with zeros (no reference needed)."""
    return torch.zeros_like


def position_means(reference: Float[Tensor, "batch pos ..."]) -> Float[Tensor, "pos ..."]:
    """The mean baseline: each position's mean over the reference rows."""
    return reference.mean(dim=0)


def mean(reference: Tensor | None, *, seed: int = 0, alignment: Alignment | None = None) -> ReplaceFn:
    """Replace each position's activation with its mean over the reference batch at that position.

    Positions align from the start of the sequence: position ``p`` is replaced by the reference mean at
    ``p`` (the reference may be longer; it may not be shorter). With an ``alignment`` (prompts of different
    lengths), they align on each row's answer instead (see ``modlens.interventions.alignment``).
    """
    if reference is None:
        raise InterventionError("mean ablation needs a reference batch")
    if alignment is not None:
        ref, aligned = reference, alignment
        return lambda activation: aligned_mean(ref, aligned, activation)
    means = position_means(reference)[None]

    def replace(activation: Tensor) -> Tensor:
        _check_positions(means, activation)
        return means[:, : activation.shape[1]].to(activation.dtype).expand_as(activation)

    return replace


def resample_indices(n_reference: int, n_rows: int, *, seed: int) -> Int[Tensor, " batch"]:
    """Reference row each of ``n_rows`` rows takes its values from: seeded, never the row's own index.

    Row ``i`` reads row ``(i + k_i) mod n_reference`` with ``k_i`` drawn from ``1..n_reference-1``, so when
    the reference is the batch itself every row gets another input's values (a one-row reference is
    used as is).
    """
    rows = torch.arange(n_rows)
    if n_reference == 1:
        return torch.zeros(n_rows, dtype=torch.long)
    gen = torch.Generator().manual_seed(seed)
    offsets = torch.randint(1, n_reference, (n_rows,), generator=gen)
    return (rows + offsets) % n_reference


def resample(reference: Tensor | None, *, seed: int = 0, alignment: Alignment | None = None) -> ReplaceFn:
    """Replace each row's activation with another reference row's (seeded; see ``resample_indices``), position
    by position from the start, or slot by slot on the answers with an ``alignment``."""
    if reference is None:
        raise InterventionError("resample ablation needs a reference batch")
    ref = reference

    def replace(activation: Tensor) -> Tensor:
        index = resample_indices(ref.shape[0], activation.shape[0], seed=seed).to(ref.device)
        if alignment is not None:
            return aligned_resample(ref, alignment, index, activation)
        _check_positions(ref, activation)
        return ref[index, : activation.shape[1]].to(activation.dtype)

    return replace


def patch(reference: Tensor | None, *, seed: int = 0, alignment: Alignment | None = None) -> ReplaceFn:
    """Replace each row's activation with the same row of another run (``reference``: its activations on the
    paired inputs, each pair's rows equally long)."""
    if reference is None:
        raise InterventionError("patching needs the activations of the run patched from")
    source = reference

    def replace(activation: Tensor) -> Tensor:
        return source[:, : activation.shape[1]]

    return replace


Builder = Callable[..., ReplaceFn]
"""``builder(reference activations | None, *, seed, alignment) -> ReplaceFn``."""

BUILDERS: dict[Replacement, Builder] = {"zero": zero, "mean": mean, "resample": resample, "patch": patch}
"""Every replacement by name."""


def replacement_fn(
    replacement: str,
    reference: Float[Tensor, "batch pos ..."] | None,
    *,
    seed: int = 0,
    alignment: Alignment | None = None,
) -> ReplaceFn:
    """The named replacement for one component, given its activations on the reference run.

    Raises:
        InterventionError: unknown replacement, or one that needs a reference got none.
    """
    return BUILDERS[check_replacement(replacement)](reference, seed=seed, alignment=alignment)


def check_replacement(replacement: str, allowed: Iterable[str] = BUILDERS) -> Replacement:
    """``replacement``, or ``InterventionError`` naming the ones ``allowed`` (default: every registered one)."""
    allowed = tuple(allowed)
    if replacement not in allowed:
        raise InterventionError(f"unknown replacement {replacement!r}; choose one of {', '.join(allowed)}")
    return replacement  # type: ignore[return-value]


def needs_reference(replacement: str) -> bool:
    """Whether a replacement reads activations of a reference run."""
    return replacement != "zero"


Site = tuple[Component, int | None]
"""A component and the one position where it is edited (``None``: every position)."""

SiteBuilder = Callable[[Component, Tensor | None], ReplaceFn]
"""``build(component, its activations on the reference run or None) -> ReplaceFn``."""


def site_builder(
    replacement: str,
    *,
    batch: Batch,
    reference: Batch | None = None,
    seed: int = 0,
    allowed: Iterable[str] = BUILDERS,
) -> SiteBuilder:
    """The ``SiteBuilder`` of a named replacement for edits of ``batch``, its values from ``reference`` (default:
    ``batch`` itself), aligned on the answers when the prompts differ in length (``alignment_of``).

    Raises:
        InterventionError: ``replacement`` is not one of ``allowed``.
    """
    check_replacement(replacement, allowed)
    alignment = alignment_of(batch, reference if reference is not None else batch)
    uses = needs_reference(replacement)

    def build(component: Component, values: Tensor | None) -> ReplaceFn:
        return replacement_fn(replacement, values if uses else None, seed=seed, alignment=alignment)

    return build


def at_position(replace: ReplaceFn, position: int) -> ReplaceFn:
    """``replace`` at one position (dimension 1) only; the live values elsewhere. A position past the
    activation's end changes nothing."""

    def replace_at(activation: Tensor) -> Tensor:
        out = activation.clone()
        if position < activation.shape[1]:
            out[:, position] = replace(activation).expand_as(activation)[:, position].to(activation.dtype)
        return out

    return replace_at
