"""Ablation methods: what replaces a component's activation. Registry ``ABLATIONS`` maps a name to a builder.

A builder takes the component's activations on a reference batch (``None`` for ``zero``) and a seed, and
returns a ``Replacement``: a function from the live activation ``[batch, pos, ...]`` to the values that
replace it. Replacements never depend on the live values, only on their shape.
"""

from collections.abc import Callable
from typing import Literal

import torch

from modlens._typing import Float, Int, Tensor
from modlens.ablation.alignment import Alignment, aligned_mean, aligned_resample
from modlens.components import Component
from modlens.errors import ModlensError

Method = Literal["zero", "mean", "resample"]
Replacement = Callable[[Tensor], Tensor]
"""``replacement(activation [batch, pos, ...]) -> values broadcastable to it``."""


class AblationError(ModlensError):
    """An ablation cannot be set up as asked (unknown method, missing or misaligned reference)."""


def _check_positions(reference: Tensor, activation: Tensor) -> None:
    if reference.shape[1] < activation.shape[1]:
        raise AblationError(
            f"the reference batch has {reference.shape[1]} positions, fewer than the {activation.shape[1]} "
            "being ablated; give a reference at least as long (positions align from the start)"
        )


def zero(reference: Tensor | None, *, seed: int = 0) -> Replacement:
    """Replace the activation with zeros (no reference needed)."""
    return torch.zeros_like


def mean(reference: Tensor | None, *, seed: int = 0, alignment: Alignment | None = None) -> Replacement:
    """Replace each position's activation with its mean over the reference batch at that position.

    Positions align from the start of the sequence: position ``p`` is replaced by the reference mean at
    ``p`` (the reference may be longer; it may not be shorter). With an ``alignment`` (prompts of different
    lengths), they align on each row's answer instead (see ``modlens.ablation.alignment``).
    """
    if reference is None:
        raise AblationError("mean ablation needs a reference batch")
    if alignment is not None:
        ref, aligned = reference, alignment
        return lambda activation: aligned_mean(ref, aligned, activation)
    means = reference.mean(dim=0, keepdim=True)

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


def resample(reference: Tensor | None, *, seed: int = 0, alignment: Alignment | None = None) -> Replacement:
    """Replace each row's activation with another reference row's (seeded; see ``resample_indices``), position
    by position from the start, or slot by slot on the answers with an ``alignment``."""
    if reference is None:
        raise AblationError("resample ablation needs a reference batch")
    ref = reference

    def replace(activation: Tensor) -> Tensor:
        index = resample_indices(ref.shape[0], activation.shape[0], seed=seed).to(ref.device)
        if alignment is not None:
            return aligned_resample(ref, alignment, index, activation)
        _check_positions(ref, activation)
        return ref[index, : activation.shape[1]].to(activation.dtype)

    return replace


Site = tuple[Component, int | None]
"""A component and the one position where it is edited (``None``: every position)."""

Builder = Callable[[Component, Tensor | None], Replacement]
"""``build(component, its activations on the reference run or None) -> Replacement``."""


def at_position(replace: Replacement, position: int) -> Replacement:
    """``replace`` at one position (dimension 1) only; the live values elsewhere. A position past the
    activation's end changes nothing."""

    def replace_at(activation: Tensor) -> Tensor:
        out = activation.clone()
        if position < activation.shape[1]:
            out[:, position] = replace(activation).expand_as(activation)[:, position].to(activation.dtype)
        return out

    return replace_at


ABLATIONS: dict[str, Callable[..., Replacement]] = {"zero": zero, "mean": mean, "resample": resample}
"""Ablation methods by name: ``builder(reference_activations | None, *, seed) -> Replacement``."""


def replacement(
    method: str,
    reference: Float[Tensor, "batch pos ..."] | None,
    *,
    seed: int = 0,
    alignment: Alignment | None = None,
) -> Replacement:
    """The registered method's replacement for one component.

    Raises:
        AblationError: unknown method, or a method that needs a reference got none.
    """
    if method not in ABLATIONS:
        raise AblationError(f"unknown ablation method {method!r}; choose one of {', '.join(ABLATIONS)}")
    if method == "zero":
        return zero(reference, seed=seed)
    return ABLATIONS[method](reference, seed=seed, alignment=alignment)


def needs_reference(method: str) -> bool:
    """Whether a method reads activations of a reference batch."""
    return method != "zero"
