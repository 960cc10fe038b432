"""Running a model under a mask: hooks for component masks, weight parametrizations for weight masks.

Removed units are replaced by a baseline: zero, or their mean activation over a reference batch
(per position); see ``modlens.names.MASK_REPLACEMENTS``. For component masks the hooks compute
``m * x + (1 - m) * baseline`` at the heads' ``z`` and the neurons' ``post`` point of every layer; a leading
sample axis in the mask lets one forward pass carry several masks over a repeated batch.
"""

import contextlib
import functools
import weakref
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import torch
from torch import nn
from torch.nn.utils import parametrize

from modlens import names
from modlens._typing import Float, Tensor
from modlens.components import Point, point_hook
from modlens.interventions.bridge import bridge_activations
from modlens.interventions.replacements import Replacement, position_means
from modlens.masks.mask import Mask, MaskError
from modlens.masks.weights import layout_of, weight_modules
from modlens.models.model import Model
from modlens.tasks.batch import Batch
from modlens.tasks.metrics import Metric

Keep = Literal["inside", "outside"]
KEEPS: tuple[Keep, ...] = get_args(Keep)
GROUP_POINTS: dict[str, Point] = {"head": "z", "neuron": "post"}
"""The point each group of a component mask gates: heads before the output projection, neurons after the
activation function."""


def _group_hooks(n_layers: int) -> list[tuple[int, str, str]]:
    """``(layer, group, hook name)`` of every gated point."""
    return [
        (layer, group, point_hook(layer, point)) for layer in range(n_layers) for group, point in GROUP_POINTS.items()
    ]


@torch.no_grad()
def mean_activations(model: Model, reference: Batch) -> dict[str, Tensor]:
    """Mean ``hook_z`` and ``mlp.hook_post`` over the reference batch, per position (the mean baseline)."""
    cache = bridge_activations(model, reference.tokens, [name for _, _, name in _group_hooks(model.spec.n_layers)])
    return {name: position_means(value) for name, value in cache.items()}


def _check_options(keep: str, replacement: str) -> None:
    if keep not in KEEPS:
        raise MaskError(f"keep must be 'inside' or 'outside', got {keep!r}")
    if replacement not in names.MASK_REPLACEMENTS:
        raise MaskError(f"unknown replacement {replacement!r}; choose one of {', '.join(names.MASK_REPLACEMENTS)}")


@dataclass(frozen=True, eq=False)
class MeanBaseline:
    """The mean baseline of one model: every head's and neuron's mean over a reference batch, per position.

    Made by ``mean_baseline``. Pass it wherever a ``reference`` batch is taken, to pay the forward pass
    that computes the means once per model instead of once per call. It belongs to the model it was
    computed on: using it on another model (a fine-tuned copy, say) raises ``MaskError``.

    Attributes:
        means: mean activation per hook name, ``[pos, ...]`` (``hook_z``: ``[pos, head, d_head]``,
            ``hook_post``: ``[pos, d_mlp]``).
        n_pos: the reference batch's sequence length; only batches of this length can be scored.
        task: the reference batch's task name (informational).
    """

    means: Mapping[str, Tensor]
    n_pos: int
    task: str = ""
    owner: Any = field(default=None, repr=False)  # a weak reference to the model the means belong to

    def check_model(self, model: Model) -> None:
        """Raises ``MaskError`` when these means were computed on another model."""
        if self.owner is None or self.owner() is not model:
            raise MaskError(
                "this mean baseline was computed on another model; compute one per model with "
                "mean_baseline(model, reference)"
            )


Reference = Batch | MeanBaseline
"""What mean ablation takes its means over: a batch (one forward pass per call) or its precomputed means."""


def mean_baseline(model: Model, reference: Batch) -> MeanBaseline:
    """The means of every head and neuron of ``model`` over ``reference`` (one forward pass), to reuse."""
    means = mean_activations(model, reference)
    return MeanBaseline(means, reference.n_pos, reference.task, weakref.ref(model))


def baselines_for(model: Model, reference: Reference) -> dict[str, Tensor]:
    """The per-position means of ``model``'s units over ``reference`` (a batch, or its precomputed means)."""
    if isinstance(reference, MeanBaseline):
        reference.check_model(model)
        return dict(reference.means)
    return mean_activations(model, reference)


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
    for layer, group, name in _group_hooks(n_layers):
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
    replacement: Replacement = "mean",
    reference: Reference | None = None,
) -> Iterator[Any]:
    """Runs the model with a mask applied; yields the bridge (call it on tokens inside the block).

    Args:
        model: the model; its bridge carries the edits only inside the block.
        mask: the units to keep (``keep="inside"``: run the subnetwork alone) or to remove
            (``keep="outside"``: ablate the subnetwork).
        replacement: what removed heads and neurons become: ``"zero"`` or ``"mean"`` (their mean activation
            on ``reference``, per position). Weight masks support ``"zero"`` only.
        reference: the batch the means are taken over (needed for ``replacement="mean"``), or its means
            precomputed by ``mean_baseline(model, reference)``.

    Raises:
        MaskError: the mask was made for a model of another shape, or a bad option.
    """
    mask.check_fits(model.spec)
    _check_options(keep, replacement)
    active = mask if keep == "inside" else ~mask
    dtype = model.dtype
    if mask.granularity == "component":
        values: dict[str, Tensor] = {k: v.to(model.device, dtype)[None] for k, v in active.units.items()}
        baselines = None
        if replacement == "mean":
            if reference is None:
                raise MaskError("replacement='mean' needs a reference batch to take the means over")
            baselines = baselines_for(model, reference)
    else:
        if replacement != "zero":
            raise MaskError("weight masks replace removed weights by zero; pass replacement='zero'")
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
    replacement: Replacement = "mean",
    reference: Reference | None = None,
) -> Float[Tensor, "batch pos d_vocab"]:
    """Logits of the masked model; the mean baseline defaults to ``batch`` itself (pass ``reference`` to fix it)."""
    ref = reference if reference is not None else batch
    with masked(model, mask, keep=keep, replacement=replacement, reference=ref) as bridge:
        return bridge(batch.tokens.to(model.device))


LOGIT_BUDGET = 2**25
"""Most logits (elements) one stacked forward of ``masked_scores`` holds: 128 MiB in fp32."""


@torch.no_grad()
def masked_scores(
    model: Model,
    masks: Sequence[Mask],
    batch: Batch,
    *,
    metric: Metric,
    keep: Keep = "inside",
    replacement: Replacement = "mean",
    reference: Reference | None = None,
) -> list[float]:
    """``metric`` of the model under each mask, component masks stacked into as few forward passes as fit.

    Equal to ``[metric(masked_logits(model, m, batch, ...), batch) for m in masks]``, but the baseline is
    computed once, and component masks share forward passes over a repeated batch (up to
    ``LOGIT_BUDGET`` logits at a time); weight masks run one by one.

    Args:
        model: the model.
        masks: the masks, all of one granularity and shape.
        batch: the examples scored.
        metric: ``metric(logits, batch) -> scalar``.
        keep, replacement, reference: as for ``masked_logits`` (means over ``batch`` itself by default).
    """
    if not masks:
        return []
    if any(m.granularity != "component" for m in masks):
        return [
            float(
                metric(masked_logits(model, m, batch, keep=keep, replacement=replacement, reference=reference), batch)
            )
            for m in masks
        ]
    _check_options(keep, replacement)
    for mask in masks:
        mask.check_fits(model.spec)
    baselines = None
    if replacement == "mean":
        baselines = baselines_for(model, reference if reference is not None else batch)
    per_sample = len(batch) * batch.n_pos * model.spec.d_vocab
    chunk = max(1, LOGIT_BUDGET // max(1, per_sample))
    tokens = batch.tokens.to(model.device)
    scores: list[float] = []
    for start in range(0, len(masks), chunk):
        group = masks[start : start + chunk]
        active = [m if keep == "inside" else ~m for m in group]
        values = {k: torch.stack([m.units[k] for m in active]).to(model.device, model.dtype) for k in group[0].units}
        with install(model, "component", values, baselines) as bridge:
            logits = bridge(tokens.repeat(len(group), 1))
        scores += [float(metric(part, batch)) for part in logits.split(len(batch))]
    return scores
