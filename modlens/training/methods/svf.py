"""Singular-value fine-tuning (Transformer², Sun et al. 2025): each targeted matrix ``W = U diag(σ) Vᵀ`` keeps its
singular vectors and learns only a scale ``z`` of its singular values, ``W' = U diag(σ ⊙ z) Vᵀ``."""

import copy
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn
from torch.nn.utils import parametrize

from modlens.errors import ConfigError
from modlens.models.model import Model
from modlens.training.methods.base import Method, layer_of, layer_prefix

Scales = dict[str, torch.Tensor]
"""An SVF expert: module name (``"gpt_neox.layers.0.attention.dense"``) -> scale vector ``z`` of its weight's
singular values (length ``min(rows, cols)``)."""


class SingularScale(nn.Module):
    """Parametrizes a weight as ``W + U diag(σ ⊙ (z − 1)) Vᵀ``: ``U diag(σ ⊙ z) Vᵀ`` up to the rounding of the SVD,
    written as a change of ``W`` so that ``z = 1`` gives back ``W`` bit for bit. ``U``, ``σ`` and ``V`` are buffers
    (never trained); ``z`` is the one parameter."""

    u: torch.Tensor
    s: torch.Tensor
    vh: torch.Tensor

    def __init__(self, weight: torch.Tensor) -> None:
        super().__init__()
        u, s, vh = torch.linalg.svd(weight.detach().double(), full_matrices=False)
        self.register_buffer("u", u.to(weight.dtype))
        self.register_buffer("s", s.to(weight.dtype))
        self.register_buffer("vh", vh.to(weight.dtype))
        self.z = nn.Parameter(torch.ones_like(self.s))

    def forward(self, original: torch.Tensor) -> torch.Tensor:
        return original + (self.u * (self.s * (self.z - 1))) @ self.vh


@dataclass(frozen=True)
class Svf(Method):
    """Only the singular-value scales of the targeted matrices train (initialised at 1); every other parameter,
    and every singular vector, is frozen. Trained on answer cross-entropy like the other methods (Transformer²
    trains ``z`` with reinforcement learning; the parametrization is the same). The result is merged into a plain
    ``Model``; ``FinetuneResult.adapter`` keeps the learned ``z`` vectors (``Scales``) for mixing experts.

    Attributes:
        targets: module-name suffixes whose ``weight`` to scale (e.g. ``("dense_4h_to_h",)``); ``None`` scales
            every matrix inside the decoder layers (attention and MLP), never the embeddings or unembedding.
    """

    name: ClassVar[str] = "svf"
    targets: tuple[str, ...] | None = None

    def matrices(self, model: Model) -> list[str]:
        """Names of the modules whose weight is scaled, in module order."""
        prefix = layer_prefix(model)
        found = [
            name
            for name, module in model.hf.named_modules()
            if layer_of(name + ".", prefix) is not None
            and isinstance(getattr(module, "weight", None), nn.Parameter)
            and module.weight.ndim == 2
            and (self.targets is None or name.endswith(self.targets))
        ]
        if not found:
            raise ConfigError(f"SVF targets {self.targets} match no weight matrix in the decoder layers")
        return found

    def trainable(self, model: Model) -> nn.Module:
        hf = copy.deepcopy(model.hf)
        for p in hf.parameters():
            p.requires_grad_(False)
        for name in self.matrices(model):
            module = hf.get_submodule(name)
            weight = module.weight
            assert isinstance(weight, torch.Tensor)  # matrices() kept only modules with a weight matrix
            parametrize.register_parametrization(module, "weight", SingularScale(weight))
        return hf.train()

    def adapter(self, snapshot: nn.Module) -> Scales:
        suffix = ".parametrizations.weight.0.z"
        named = snapshot.named_parameters()
        return {n.removesuffix(suffix): p.detach().clone() for n, p in named if n.endswith(suffix)}

    def result(self, model: Model, snapshot: nn.Module, source: str) -> Model:
        return apply_scales(model, self.adapter(snapshot), source=source)


@torch.no_grad()
def apply_scales(model: Model, scales: Scales, *, source: str | None = None) -> Model:
    """A copy of ``model`` with each named matrix's singular values scaled by its ``z`` (other weights untouched).

    Raises:
        ConfigError: a name that is no weight matrix of ``model``, or a ``z`` of the wrong length.
    """
    hf = copy.deepcopy(model.hf)
    for name, z in scales.items():
        try:
            module = hf.get_submodule(name)
        except AttributeError:
            raise ConfigError(f"SVF scales name {name!r}, which is no module of the model") from None
        weight = getattr(module, "weight", None)
        if not isinstance(weight, nn.Parameter) or weight.ndim != 2:
            raise ConfigError(f"SVF scales name {name!r}, which holds no weight matrix")
        scale = SingularScale(weight).to(weight.device)
        if scale.z.shape != z.shape:
            raise ConfigError(f"SVF scale for {name!r} has shape {tuple(z.shape)}, expected {tuple(scale.z.shape)}")
        scale.z.copy_(z)
        weight.copy_(scale(weight))
    return model.with_weights(hf, source=source or f"{model.source}+svf")
