"""Reading activations on the fast path: forward hooks on the Hugging Face modules at the bridge's points.

Each ``Point`` (``modlens.components``) is the input or output of one module of a layer: ``resid_pre`` the
layer's input, ``z`` the input of the attention output projection (``hook_z``), ``attn_out`` the attention
module's output, ``post`` the input of the MLP down projection (``mlp.hook_post``), ``mlp_out`` the MLP's
output, ``resid_post`` the layer's output. The values equal the bridge's hooks (see the tests).
"""

import functools
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, cast

from torch import nn

from modlens._typing import Tensor
from modlens.components import Point
from modlens.models import Model
from modlens.models.modules import MODULE_PATHS

POINT_MODULES: dict[Point, tuple[str | None, str]] = {
    "resid_pre": (None, "input"),
    "z": ("o_proj", "input"),
    "attn_out": ("attn", "output"),
    "post": ("down", "input"),
    "mlp_out": ("mlp", "output"),
    "resid_post": (None, "output"),
}
"""Each point as ``(part of the layer in MODULE_PATHS, or None for the layer itself; "input" or "output")``."""

Sink = Callable[[int, Tensor], None]
"""``sink(i, value)``: receives the activation of the ``i``-th requested point as its module runs."""


def decoder_layers(model: Model) -> list[nn.Module]:
    """The decoder layers of a fast-path model, in order."""
    return list(cast(nn.ModuleList, model.hf.get_submodule(MODULE_PATHS[model.spec.architecture]["layers"])))


def point_module(model: Model, layer: nn.Module, point: Point) -> tuple[nn.Module, bool]:
    """The module whose input (``True``) or output (``False``) is ``point`` of decoder ``layer``."""
    part, side = POINT_MODULES[point]
    module = layer if part is None else layer.get_submodule(MODULE_PATHS[model.spec.architecture][part])
    return module, side == "input"


@contextmanager
def recording(model: Model, points: Sequence[tuple[int, Point]], sink: Sink) -> Iterator[None]:
    """Hooks the modules behind ``points`` (``(layer, point)`` pairs) for the block: every forward of
    ``model.hf`` inside it hands each point's activation to ``sink``. The hooks are removed on exit, exceptions
    included; a sink may raise to stop the forward early."""
    layers = decoder_layers(model)
    handles = []

    def hook(index: int, from_input: bool, module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        value = args[0] if from_input else output
        sink(index, value[0] if isinstance(value, tuple) else value)

    try:
        for index, (layer, point) in enumerate(points):
            module, from_input = point_module(model, layers[layer], point)
            handles.append(module.register_forward_hook(functools.partial(hook, index, from_input)))
        yield
    finally:
        for handle in handles:
            handle.remove()
