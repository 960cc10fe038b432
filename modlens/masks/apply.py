"""Running a model under a mask: hooks for component masks, weight parametrizations for weight masks.

Removed units are replaced by a baseline: zero, or their mean activation over a reference batch
(per position). For component masks the hooks compute ``m * x + (1 - m) * baseline`` on
``blocks.{l}.attn.hook_z`` (heads) and ``blocks.{l}.mlp.hook_post`` (neurons); a leading sample
axis in the mask lets one forward pass carry several mask samples over a repeated batch.
"""

import contextlib
import functools
from collections.abc import Iterator, MutableMapping
from typing import Any, Literal

import torch
from torch import nn
from torch.nn.utils import parametrize

from modlens._typing import Tensor
from modlens.masks.mask import Mask, MaskError
from modlens.masks.units import layout_of, weight_modules
from modlens.models.model import Model
from modlens.tasks.batch import Batch

Replacement = Literal["zero", "mean"]
REPLACEMENTS: tuple[Replacement, ...] = ("zero", "mean")
Keep = Literal["inside", "outside"]


def head_hook(layer: int) -> str:
    return f"blocks.{layer}.attn.hook_z"


def neuron_hook(layer: int) -> str:
    return f"blocks.{layer}.mlp.hook_post"


@torch.no_grad()
def mean_activations(model: Model, reference: Batch) -> dict[str, Tensor]:
    """Mean ``hook_z`` and ``mlp.hook_post`` over the reference batch, per position (the mean baseline)."""
    names = [f(layer) for layer in range(model.spec.n_layers) for f in (head_hook, neuron_hook)]
    _, cache = model.bridge.run_with_cache(reference.tokens.to(model.device), names_filter=names)
    return {name: cache[name].mean(0) for name in names}


def _blend(x: Tensor, m: Tensor, base: Tensor | None) -> Tensor:
    """``m * x + (1 - m) * base``; ``m`` is ``[sample, unit]``, ``x`` is ``[sample * batch, pos, unit, ...]``."""
    samples = m.shape[0]
    xs = x.view(samples, -1, *x.shape[1:])
    mm = m.view(samples, 1, 1, m.shape[1], *([1] * (x.ndim - 3)))
    if base is None:
        return (xs * mm).view_as(x)
    if base.shape[0] != x.shape[1]:
        raise MaskError(
            f"mean baseline covers {base.shape[0]} positions but the input has {x.shape[1]}; "
            "use a reference batch of the same sequence length"
        )
    return (base + mm * (xs - base)).view_as(x)


def _component_hook(
    x: Tensor, hook: Any, *, values: MutableMapping[str, Tensor], group: str, layer: int, base: Tensor | None
) -> Tensor:
    return _blend(x, values[group][:, layer], base)


def component_hooks(
    values: MutableMapping[str, Tensor], n_layers: int, baselines: dict[str, Tensor] | None
) -> list[tuple[str, Any]]:
    """Forward hooks reading ``values["head"]`` ``[sample, layer, head]`` and ``values["neuron"]`` at call time."""
    hooks = []
    for layer in range(n_layers):
        for group, name in (("head", head_hook(layer)), ("neuron", neuron_hook(layer))):
            base = None if baselines is None else baselines[name]
            fn = functools.partial(_component_hook, values=values, group=group, layer=layer, base=base)
            hooks.append((name, fn))
    return hooks


class _WeightScale(nn.Module):
    """Parametrization ``W -> W * values[key]``, reading the current mask at call time."""

    def __init__(self, values: MutableMapping[str, Tensor], key: str) -> None:
        super().__init__()
        self.values = values
        self.key = key

    def forward(self, weight: Tensor) -> Tensor:
        return weight * self.values[self.key].to(weight.dtype)


@contextlib.contextmanager
def install(
    model: Model,
    granularity: str,
    values: MutableMapping[str, Tensor],
    baselines: dict[str, Tensor] | None = None,
) -> Iterator[Any]:
    """Installs live masks on ``model.bridge`` for the duration of the block; always removes them.

    ``values`` is read at every forward, so a training loop can update it in place between steps.
    """
    bridge = model.bridge
    if granularity == "component":
        with bridge.hooks(fwd_hooks=component_hooks(values, model.spec.n_layers, baselines)):
            yield bridge
        return
    if baselines is not None:
        raise MaskError("weight masks replace removed weights by zero; mean replacement is for component masks")
    modules = weight_modules(bridge)
    done: list[nn.Module] = []
    try:
        for key in values:
            if key not in modules:
                raise MaskError(f"mask covers {key!r}, which this model lacks; it has {', '.join(modules)}")
            module = modules[key]
            if tuple(_weight(module).shape) != tuple(values[key].shape):
                raise MaskError(
                    f"mask for {key} has shape {tuple(values[key].shape)}, "
                    f"the model's weight {tuple(_weight(module).shape)}"
                )
            parametrize.register_parametrization(module, "weight", _WeightScale(values, key))
            done.append(module)
        yield bridge
    finally:
        for module in done:
            parametrize.remove_parametrizations(module, "weight", leave_parametrized=False)


def _weight(module: nn.Module) -> Tensor:
    weight = module.weight
    assert isinstance(weight, Tensor)
    return weight


def weight_layouts(model: Model) -> dict[str, str]:
    """Weight layout (``"out_in"`` / ``"in_out"``) of every maskable matrix, by mask key."""
    return {key: layout_of(module) for key, module in weight_modules(model.bridge).items()}


def weight_shapes(model: Model) -> dict[str, tuple[int, ...]]:
    return {key: tuple(_weight(module).shape) for key, module in weight_modules(model.bridge).items()}


@contextlib.contextmanager
def masked(
    model: Model,
    mask: Mask,
    *,
    keep: Keep = "inside",
    method: Replacement = "mean",
    reference: Batch | None = None,
) -> Iterator[Any]:
    """Runs the model with a mask applied; yields the bridge (call it on tokens inside the block).

    Args:
        model: the model; its bridge carries the edits only inside the block.
        mask: the units to keep (``keep="inside"``: run the subnetwork alone) or to remove
            (``keep="outside"``: ablate the subnetwork).
        method: what removed heads and neurons become: ``"zero"`` or ``"mean"`` (their mean activation
            on ``reference``, per position). Weight masks support ``"zero"`` only.
        reference: the batch the means are taken over (needed for ``method="mean"``).

    Raises:
        MaskError: the mask was made for a model of another shape, or a bad option.
    """
    mask.check_fits(model.spec)
    if keep not in ("inside", "outside"):
        raise MaskError(f"keep must be 'inside' or 'outside', got {keep!r}")
    if method not in REPLACEMENTS:
        raise MaskError(f"unknown replacement {method!r}; choose one of {', '.join(REPLACEMENTS)}")
    active = mask if keep == "inside" else ~mask
    dtype = model.dtype
    if mask.granularity == "component":
        values: dict[str, Tensor] = {k: v.to(model.device, dtype)[None] for k, v in active.units.items()}
        baselines = None
        if method == "mean":
            if reference is None:
                raise MaskError("method='mean' needs a reference batch to take the means over")
            baselines = mean_activations(model, reference)
    else:
        if method != "zero":
            raise MaskError("weight masks replace removed weights by zero; pass method='zero'")
        values = {k: v.to(model.device, dtype) for k, v in active.units.items()}
        baselines = None
    with install(model, mask.granularity, values, baselines) as bridge:
        yield bridge


@torch.no_grad()
def masked_logits(
    model: Model,
    mask: Mask,
    batch: Batch,
    *,
    keep: Keep = "inside",
    method: Replacement = "mean",
    reference: Batch | None = None,
) -> Tensor:
    """Logits ``[batch, pos, d_vocab]`` of the masked model; the mean baseline defaults to ``batch`` itself."""
    ref = reference if reference is not None else batch
    with masked(model, mask, keep=keep, method=method, reference=ref) as bridge:
        return bridge(batch.tokens.to(model.device))
