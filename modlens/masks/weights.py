"""The weight matrices a weight mask covers, their layouts, and how a weight mask maps onto heads and neurons."""

from typing import Any

import torch
from torch import nn

from modlens._typing import Tensor
from modlens.masks.mask import Mask, MaskError

ATTN_MATRICES = ("q", "k", "v", "o")
MLP_MATRICES = ("in", "gate", "out")


def weight_modules(bridge: Any) -> dict[str, nn.Module]:
    """The HF modules behind each attention and MLP matrix of a bridge, keyed ``blocks.{l}.attn.q`` etc.

    These are the modules the bridge's forward actually runs (for fused-QKV models, the split q/k/v
    copies), so a parametrization on their ``weight`` changes the model's output.
    """
    found: dict[str, nn.Module] = {}
    for layer, block in enumerate(bridge.blocks):
        for part, names in (("attn", ATTN_MATRICES), ("mlp", MLP_MATRICES)):
            holder = getattr(block, part)
            for name in names:
                try:
                    sub = getattr(holder, name)
                except (AttributeError, KeyError):
                    continue
                module = getattr(sub, "original_component", None)
                if module is not None and isinstance(getattr(module, "weight", None), torch.Tensor):
                    found[f"blocks.{layer}.{part}.{name}"] = module
    if not found:
        raise MaskError("found no attention or MLP weight matrices to mask in this model")
    return found


def layout_of(module: nn.Module) -> str:
    """``"in_out"`` for GPT-2 ``Conv1D`` (weight ``[in, out]``), ``"out_in"`` for ``nn.Linear``."""
    return "in_out" if type(module).__name__ == "Conv1D" else "out_in"


def _axis(key: str, layout: str) -> int:
    """The weight axis that indexes heads (attention) or neurons (MLP)."""
    matrix = key.rsplit(".", 1)[1]
    reads_units = matrix in ("o", "out")  # these matrices read from heads / neurons: the unit is their input
    out_axis, in_axis = (0, 1) if layout == "out_in" else (1, 0)
    return in_axis if reads_units else out_axis


def weight_component_density(mask: Mask) -> tuple[Tensor, Tensor]:
    """Kept fraction of the weights of each head ``[layer, head]`` and each neuron ``[layer, d_mlp]``."""
    shape = mask.shape
    n_layers, n_heads, n_kv, d_mlp = shape["n_layers"], shape["n_heads"], shape["n_kv_heads"], shape["d_mlp"]
    kept_h = torch.zeros(n_layers, n_heads)
    total_h = torch.zeros(n_layers, n_heads)
    kept_n = torch.zeros(n_layers, d_mlp)
    total_n = torch.zeros(n_layers, d_mlp)
    for key, value in mask.units.items():
        layer = int(key.split(".")[1])
        axis = _axis(key, mask.layouts.get(key, "out_in"))
        rest = tuple(d for d in range(value.ndim) if d != axis)
        if ".attn." in key:
            groups = n_kv if key.endswith((".k", ".v")) else n_heads
            per = value.movedim(axis, 0).reshape(groups, -1)
            kept, total = per.sum(1).float(), torch.full((groups,), float(per.shape[1]))
            expand = n_heads // groups  # key/value groups serve consecutive query heads
            kept_h[layer] += kept.repeat_interleave(expand)
            total_h[layer] += total.repeat_interleave(expand)
        else:
            kept_n[layer] += value.sum(rest).float()
            total_n[layer] += value.shape[rest[0]]
    return kept_h / total_h.clamp_min(1), kept_n / total_n.clamp_min(1)
