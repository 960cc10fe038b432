"""The ``Mask`` type: a frozen set of kept units (heads and neurons, or single weights) with set algebra."""

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pandas as pd
import torch

from modlens._typing import Tensor
from modlens.components import Component
from modlens.errors import ModlensError
from modlens.models.spec import ModelSpec

Granularity = Literal["component", "weight"]
GRANULARITIES: tuple[Granularity, ...] = ("component", "weight")
SHAPE_FIELDS = ("n_layers", "n_heads", "n_kv_heads", "d_model", "d_head", "d_mlp")
COMPONENT_GROUPS = ("head", "neuron")


class MaskError(ModlensError):
    """A mask that does not fit a model, a file that is not a mask, or an invalid mask option."""


def shape_of(spec: ModelSpec) -> dict[str, int]:
    """The fields of a model's shape that decide whether a mask fits it."""
    return {name: int(getattr(spec, name)) for name in SHAPE_FIELDS}


@dataclass(frozen=True, eq=False)
class Mask:
    """Kept units of a model: the subnetwork a subroutine runs through.

    Attributes:
        granularity: ``"component"`` (one unit per attention head and MLP neuron) or ``"weight"``
            (one unit per weight of each attention and MLP matrix).
        units: boolean tensors, True = kept. Component masks hold ``"head"`` ``[layer, head]`` and
            ``"neuron"`` ``[layer, d_mlp]``; weight masks hold one tensor per matrix, keyed
            ``blocks.{l}.attn.{q,k,v,o}`` / ``blocks.{l}.mlp.{in,gate,out}``, shaped like that weight.
        shape: the model shape the mask was made for (``n_layers``, ``n_heads``, ``d_mlp``, ...).
        layouts: weight masks only: ``"out_in"`` (``nn.Linear``) or ``"in_out"`` (GPT-2 ``Conv1D``) per key.
        meta: how the mask was made (algorithm, sparsity, seed, task, ...); informational.
    """

    granularity: Granularity
    units: Mapping[str, Tensor]
    shape: Mapping[str, int]
    layouts: Mapping[str, str] = field(default_factory=dict)
    meta: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.granularity not in GRANULARITIES:
            raise MaskError(f"unknown granularity {self.granularity!r}; choose one of {', '.join(GRANULARITIES)}")
        object.__setattr__(self, "units", {k: v.detach().to("cpu", torch.bool) for k, v in self.units.items()})

    # -- construction -------------------------------------------------------------------------------
    @classmethod
    def full(cls, spec: ModelSpec) -> "Mask":
        """A component mask keeping every head and neuron (running it equals running the model)."""
        shape = shape_of(spec)
        return cls("component", _component_tensors(shape, True), shape)

    @classmethod
    def from_components(cls, components: Sequence[Component], spec: ModelSpec, **meta: Any) -> "Mask":
        """A component mask keeping exactly ``components`` (heads and neurons; whole layers expand)."""
        shape = shape_of(spec)
        units = _component_tensors(shape, False)
        for comp in components:
            comp.check(spec)
            if comp.kind == "head":
                units["head"][comp.layer, comp.index] = True
            elif comp.kind == "neuron":
                units["neuron"][comp.layer, comp.index] = True
            elif comp.kind == "attn":
                units["head"][comp.layer] = True
            elif comp.kind == "mlp":
                units["neuron"][comp.layer] = True
            else:
                raise MaskError(f"{comp}: a component mask covers heads and neurons, not the residual stream")
        return cls("component", units, shape, meta=dict(meta))

    def replace(self, units: Mapping[str, Tensor], **meta: Any) -> "Mask":
        """A mask of the same kind and shape over other units."""
        return Mask(self.granularity, units, self.shape, self.layouts, {**self.meta, **meta})

    # -- size ---------------------------------------------------------------------------------------
    @property
    def size(self) -> int:
        """Number of kept units."""
        return sum(int(v.sum()) for v in self.units.values())

    @property
    def n_units(self) -> int:
        """Number of maskable units."""
        return sum(v.numel() for v in self.units.values())

    @property
    def density(self) -> float:
        """Fraction of units kept."""
        return self.size / max(1, self.n_units)

    def density_by_layer(self) -> pd.DataFrame:
        """Kept fraction per layer and group: columns ``layer, group, kept, total, density``."""
        rows = []
        for key, value in self.units.items():
            if self.granularity == "component":
                for layer in range(value.shape[0]):
                    rows.append((layer, key, int(value[layer].sum()), value[layer].numel()))
            else:
                layer = int(key.split(".")[1])
                rows.append((layer, key.split(".", 2)[2], int(value.sum()), value.numel()))
        frame = pd.DataFrame(rows, columns=["layer", "group", "kept", "total"])
        frame["density"] = frame["kept"] / frame["total"]
        return frame.sort_values(["layer", "group"], ignore_index=True)

    # -- set algebra --------------------------------------------------------------------------------
    def _check_same(self, other: "Mask") -> None:
        if self.granularity != other.granularity or dict(self.shape) != dict(other.shape):
            raise MaskError(
                f"masks differ in kind or model shape: {self.granularity} {dict(self.shape)} vs "
                f"{other.granularity} {dict(other.shape)}"
            )
        if set(self.units) != set(other.units):
            raise MaskError("masks cover different sets of matrices")

    def _combine(self, other: "Mask", op: Any) -> "Mask":
        self._check_same(other)
        return self.replace({k: op(v, other.units[k]) for k, v in self.units.items()})

    def __and__(self, other: "Mask") -> "Mask":
        return self._combine(other, torch.logical_and)

    def __or__(self, other: "Mask") -> "Mask":
        return self._combine(other, torch.logical_or)

    def __sub__(self, other: "Mask") -> "Mask":
        return self._combine(other, lambda a, b: a & ~b)

    def __invert__(self) -> "Mask":
        return self.replace({k: ~v for k, v in self.units.items()})

    def equals(self, other: "Mask") -> bool:
        """Same kind, shape and kept units."""
        self._check_same(other)
        return all(torch.equal(v, other.units[k]) for k, v in self.units.items())

    def iou(self, other: "Mask") -> float:
        """Intersection over union; NaN when both masks are empty."""
        return iou(self, other)

    def iomin(self, other: "Mask") -> float:
        """Intersection over the smaller mask's size; NaN when either mask is empty."""
        return iomin(self, other)

    def random_like(self, seed: int) -> "Mask":
        """A random mask with as many kept units as this one in every unit group (a same-size control).

        Groups are those of ``unit_groups``: each layer's heads, each layer's neurons, each weight matrix.
        """
        gen = torch.Generator().manual_seed(seed)
        units = {}
        for key, groups in unit_groups(self).items():
            counts = groups.sum(1, keepdim=True)
            # a uniformly random rank per unit within its group; the lowest ``count`` ranks are kept
            ranks = torch.rand(groups.shape, generator=gen).argsort(1).argsort(1)
            units[key] = (ranks < counts).view(self.units[key].shape)
        return self.replace(units, random_seed=seed)

    # -- components ---------------------------------------------------------------------------------
    def components(self, *, min_density: float = 0.0) -> list[Component]:
        """Kept heads and neurons as component addresses.

        For a weight mask, a head counts as kept when more than ``min_density`` of its weights
        (its rows of W_Q, its key/value group's rows of W_K and W_V, its columns of W_O) are kept; a
        neuron likewise over its row of W_in (and W_gate) and its column of W_out.
        """
        heads, neurons = self.component_density()
        kept = [Component(int(i), "head", int(h)) for i, h in (heads > min_density).nonzero().tolist()]
        kept += [Component(int(i), "neuron", int(n)) for i, n in (neurons > min_density).nonzero().tolist()]
        return kept

    def component_density(self) -> tuple[Tensor, Tensor]:
        """Kept fraction of each head ``[layer, head]`` and each neuron ``[layer, d_mlp]``."""
        if self.granularity == "component":
            return self.units["head"].float(), self.units["neuron"].float()
        from modlens.masks.weights import weight_component_density

        return weight_component_density(self)

    def to_component_mask(self, *, min_density: float = 0.0) -> "Mask":
        """The component mask of ``components(min_density=...)`` (identity for component masks)."""
        if self.granularity == "component":
            return self
        shape = dict(self.shape)
        heads, neurons = self.component_density()
        return Mask("component", {"head": heads > min_density, "neuron": neurons > min_density}, shape, {}, self.meta)

    def check_fits(self, spec: ModelSpec) -> None:
        """Raises ``MaskError`` in one line when this mask was made for a model of another shape."""
        have = shape_of(spec)
        diff = [f"{k} {self.shape.get(k)} vs {have[k]}" for k in SHAPE_FIELDS if self.shape.get(k) != have[k]]
        if diff:
            raise MaskError("mask was made for a model of another shape (mask vs model: " + ", ".join(diff) + ")")


def _component_tensors(shape: Mapping[str, int], value: bool) -> dict[str, Tensor]:
    return {
        "head": torch.full((shape["n_layers"], shape["n_heads"]), value),
        "neuron": torch.full((shape["n_layers"], shape["d_mlp"]), value),
    }


def unit_groups(mask: Mask) -> dict[str, Tensor]:
    """Each unit tensor as ``[group, unit]``: a component mask's tensors by layer (the heads or neurons of
    one layer), a weight mask's tensors whole (one matrix of one layer).

    Same-size random controls (``Mask.random_like``) and the chance overlaps built on them
    (``modlens.modularity.expected_iou`` and friends) keep the number of kept units in every group.
    """
    if mask.granularity == "component":
        return {k: v.reshape(v.shape[0], -1) for k, v in mask.units.items()}
    return {k: v.reshape(1, -1) for k, v in mask.units.items()}


def _counts(a: Mask, b: Mask) -> tuple[int, int]:
    a._check_same(b)
    inter = sum(int((v & b.units[k]).sum()) for k, v in a.units.items())
    union = sum(int((v | b.units[k]).sum()) for k, v in a.units.items())
    return inter, union


def iou(a: Mask, b: Mask) -> float:
    """``|A ∧ B| / |A ∨ B|`` (Csordás et al. 2021); NaN when both masks are empty."""
    inter, union = _counts(a, b)
    return inter / union if union else float("nan")


def iomin(a: Mask, b: Mask) -> float:
    """``|A ∧ B| / min(|A|, |B|)``: 1 when one mask contains the other; NaN when either is empty."""
    inter, _ = _counts(a, b)
    smaller = min(a.size, b.size)
    return inter / smaller if smaller else float("nan")


def pairwise_overlap(masks: Mapping[str, Mask]) -> pd.DataFrame:
    """IoU and IoMin of every unordered pair of named masks: columns ``a, b, iou, iomin``."""
    rows = [(x, y, iou(masks[x], masks[y]), iomin(masks[x], masks[y])) for x, y in itertools.combinations(masks, 2)]
    return pd.DataFrame(rows, columns=["a", "b", "iou", "iomin"])
