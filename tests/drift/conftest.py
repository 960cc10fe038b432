"""Fixtures for drift tests: tiny models and copies with a perturbation planted in one layer's MLP."""

import copy

import pytest
import torch

from modlens.models import Model, tiny_model

MLP_OUT = {  # the MLP output projection of block ``i`` in each family's HF module
    "gpt2": lambda hf, i: hf.transformer.h[i].mlp.c_proj.weight,
    "gpt_neox": lambda hf, i: hf.gpt_neox.layers[i].mlp.dense_4h_to_h.weight,
    "llama": lambda hf, i: hf.model.layers[i].mlp.down_proj.weight,
}


def planted(model: Model, family: str, layer: int, *, scale: float = 0.05, seed: int = 0) -> Model:
    """A copy of ``model`` with Gaussian noise added to one layer's MLP output weights only."""
    hf = copy.deepcopy(model.hf)
    weight = MLP_OUT[family](hf, layer)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        weight.add_(scale * torch.randn(weight.shape, generator=gen))
    return model.with_weights(hf)


@pytest.fixture(scope="session", params=["gpt2", "llama"])
def planted_pair(request: pytest.FixtureRequest, tokenizer) -> tuple[str, Model, Model]:
    """``(family, base, tuned)``: 3-layer models (Llama with GQA) differing only in layer 1's MLP output."""
    extra = {"n_kv_heads": 2} if request.param == "llama" else {}
    base = tiny_model(request.param, tokenizer=tokenizer, n_layers=3, d_model=32, n_heads=4, n_ctx=32, **extra)
    return request.param, base, planted(base, request.param, 1)
