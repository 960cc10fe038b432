"""Component addresses, one format everywhere: ``L3H2`` (head), ``L3.attn``, ``L3.mlp``, ``L3N17`` (MLP neuron),
``L3.resid`` (the residual stream entering layer 3)."""

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from modlens.errors import ModlensError
from modlens.models.spec import ModelSpec

Kind = Literal["head", "attn", "mlp", "neuron", "resid"]
KINDS: tuple[Kind, ...] = ("head", "attn", "mlp", "neuron", "resid")
WHOLE_KINDS: tuple[Kind, ...] = ("attn", "mlp", "resid")
"""Kinds addressed by layer alone."""

Point = Literal["resid_pre", "z", "attn_out", "post", "mlp_out", "resid_post"]
"""Where in a layer an activation is read or replaced: the layer's input, the heads' outputs before the output
projection (``z``), the attention output, the MLP hidden units (``post``), the MLP output, the layer's output."""
POINT_HOOKS: dict[Point, str] = {
    "resid_pre": "blocks.{layer}.hook_resid_pre",
    "z": "blocks.{layer}.attn.hook_z",
    "attn_out": "blocks.{layer}.hook_attn_out",
    "post": "blocks.{layer}.mlp.hook_post",
    "mlp_out": "blocks.{layer}.hook_mlp_out",
    "resid_post": "blocks.{layer}.hook_resid_post",
}
"""The TransformerLens hook name of each point (``point_hook``); the fast path's modules: ``interventions.capture``."""
KIND_POINTS: dict[Kind, Point] = {
    "head": "z",
    "attn": "attn_out",
    "mlp": "mlp_out",
    "neuron": "post",
    "resid": "resid_pre",
}
"""The point each kind of component lives at (a head or neuron is one slice of it)."""


def point_hook(layer: int, point: Point) -> str:
    """The TransformerLens hook name of ``point`` in ``layer``, e.g. ``blocks.3.attn.hook_z``."""
    return POINT_HOOKS[point].format(layer=layer)


_PATTERN = re.compile(r"^L(\d+)(?:H(\d+)|N(\d+)|\.(attn|mlp|resid))$")


class ComponentError(ModlensError):
    """An invalid or out-of-range component address."""


@dataclass(frozen=True, order=True)
class Component:
    """One addressable part of a transformer.

    Attributes:
        layer: block index.
        kind: ``"head"`` (one attention head), ``"attn"`` (a whole attention layer), ``"mlp"`` (a whole
            MLP layer), ``"neuron"`` (one MLP hidden unit) or ``"resid"`` (the residual stream entering the
            layer, for patching).
        index: head or neuron index; ``None`` for whole layers.
    """

    layer: int
    kind: Kind
    index: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ComponentError(f"unknown component kind {self.kind!r}; choose one of {', '.join(KINDS)}")
        if self.layer < 0:
            raise ComponentError(f"layer must be >= 0, got {self.layer}")
        if self.kind in ("head", "neuron") and (self.index is None or self.index < 0):
            raise ComponentError(f"a {self.kind} needs an index >= 0, got {self.index}")
        if self.kind in WHOLE_KINDS and self.index is not None:
            raise ComponentError(f"a whole {self.kind} layer takes no index, got {self.index}")

    def __str__(self) -> str:
        if self.kind == "head":
            return f"L{self.layer}H{self.index}"
        if self.kind == "neuron":
            return f"L{self.layer}N{self.index}"
        return f"L{self.layer}.{self.kind}"

    @property
    def point(self) -> Point:
        """The point of its layer this component's activation lives at (see ``KIND_POINTS``)."""
        return KIND_POINTS[self.kind]

    @property
    def hook_name(self) -> str:
        """The TransformerLens hook whose activation this component's ablation edits."""
        return point_hook(self.layer, self.point)

    def check(self, spec: ModelSpec) -> "Component":
        """Returns self, or raises ``ComponentError`` naming the model's valid range."""
        if not 0 <= self.layer < spec.n_layers:
            raise ComponentError(
                f"{self}: layer {self.layer} out of range; the model has layers 0..{spec.n_layers - 1}"
            )
        if self.kind == "head" and not 0 <= (self.index or 0) < spec.n_heads:
            raise ComponentError(f"{self}: head {self.index} out of range; layers have heads 0..{spec.n_heads - 1}")
        if self.kind == "neuron" and not 0 <= (self.index or 0) < spec.d_mlp:
            raise ComponentError(f"{self}: neuron {self.index} out of range; MLPs have neurons 0..{spec.d_mlp - 1}")
        return self


def parse_component(text: str, spec: ModelSpec | None = None) -> Component:
    """Parses ``L3H2`` / ``L3.attn`` / ``L3.mlp`` / ``L3N17``; checks the range when ``spec`` is given.

    Raises:
        ComponentError: malformed address, or out of range for ``spec``.
    """
    match = _PATTERN.match(text.strip())
    if match is None:
        raise ComponentError(
            f"unknown component {text!r}; write L<layer>H<head>, L<layer>.attn, L<layer>.mlp, L<layer>.resid "
            "or L<layer>N<neuron>"
        )
    layer, head, neuron, whole = match.groups()
    if head is not None:
        comp = Component(int(layer), "head", int(head))
    elif neuron is not None:
        comp = Component(int(layer), "neuron", int(neuron))
    else:
        comp = Component(int(layer), whole)  # type: ignore[arg-type]
    return comp.check(spec) if spec is not None else comp


def parse_components(texts: Iterable[str], spec: ModelSpec | None = None) -> list[Component]:
    """``parse_component`` over many addresses, in order."""
    return [parse_component(t, spec) for t in texts]


def hook_name(component: Component) -> str:
    """The TransformerLens hook whose activation ablating ``component`` edits (see ``Component.hook_name``)."""
    return component.hook_name


def enumerate_components(spec: ModelSpec, kind: Kind) -> list[Component]:
    """Every component of one kind, layer by layer."""
    if kind == "head":
        return [Component(layer, "head", h) for layer in range(spec.n_layers) for h in range(spec.n_heads)]
    if kind == "neuron":
        return [Component(layer, "neuron", n) for layer in range(spec.n_layers) for n in range(spec.d_mlp)]
    if kind in WHOLE_KINDS:
        return [Component(layer, kind) for layer in range(spec.n_layers)]
    raise ComponentError(f"unknown component kind {kind!r}; choose one of {', '.join(KINDS)}")


SELECTIONS: dict[str, tuple[Kind, ...]] = {
    "heads": ("head",),
    "attn": ("attn",),
    "mlp": ("mlp",),
    "neurons": ("neuron",),
    "resid": ("resid",),
    "all": ("head", "attn", "mlp", "neuron"),
}
"""Named groups of component kinds (CLI ``--components``)."""


def select_components(spec: ModelSpec, selection: str) -> list[Component]:
    """Every component in a named group (``heads``, ``attn``, ``mlp``, ``neurons``, ``resid``, ``all``), kind by kind.

    Raises:
        ComponentError: unknown group name.
    """
    if selection not in SELECTIONS:
        raise ComponentError(f"unknown component group {selection!r}; choose one of {', '.join(SELECTIONS)}")
    return [c for kind in SELECTIONS[selection] for c in enumerate_components(spec, kind)]
