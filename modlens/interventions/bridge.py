"""Reading and replacing component activations on the TransformerLens bridge (by hook name).

The bridge path serves every architecture the bridge loads; it is the reference of the fast path
(``modlens.interventions.stack``), which reads the same points on the Hugging Face modules.
"""

import functools
from collections.abc import Sequence
from typing import Any

import torch

from modlens._typing import Tensor
from modlens.components import Component
from modlens.interventions.replacements import ReplaceFn
from modlens.models import Model

Hook = tuple[str, Any]
"""``(hook_name, fn)``, as ``bridge.run_with_hooks`` and ``bridge.hooks`` take them."""


def component_values(activation: Tensor, component: Component) -> Tensor:
    """The slice of a hook activation that belongs to one component (``[batch, pos, ...]``)."""
    if component.kind in ("head", "neuron"):
        return activation[:, :, component.index]
    return activation


@torch.no_grad()
def bridge_activations(model: Model, tokens: Tensor, names: Sequence[str]) -> dict[str, Tensor]:
    """The (unedited) activations at hook ``names`` on ``tokens``: one cached bridge forward."""
    _, cache = model.bridge.run_with_cache(tokens.to(model.device), names_filter=sorted(set(names)))
    return {name: cache[name] for name in names}


def reference_activations(model: Model, tokens: Tensor, components: Sequence[Component]) -> dict[Component, Tensor]:
    """Each component's activation on ``tokens`` (a reference or source run), read through the bridge."""
    cache = bridge_activations(model, tokens, [c.hook_name for c in components])
    return {c: component_values(cache[c.hook_name], c) for c in components}


def _replace(activation: Tensor, hook: Any, *, component: Component, values: ReplaceFn) -> Tensor:
    out = activation.clone()
    if component.kind in ("head", "neuron"):
        part = out[:, :, component.index]
        out[:, :, component.index] = values(part).to(part.dtype)
    else:
        out[:] = values(activation).to(activation.dtype)
    return out


def replacing_hook(component: Component, values: ReplaceFn) -> Hook:
    """The hook that replaces ``component``'s activation with ``values(activation)``."""
    return component.hook_name, functools.partial(_replace, component=component, values=values)
