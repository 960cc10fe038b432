"""A one-layer GPT-NeoX written by hand, in which we know which MLP neurons compute each operation.

Three operations F, G, H, each defined on K inputs. Every input of an operation appears as two tokens: a
*primitive* token (the operation alone) and a *composite* token (the same step inside a two-step composite).
A prompt is ``BOS s1 a1 s2 a2``: the model must answer ``a = op(i)`` after each step token ``s = (op, i)``.
Attention is inert (zero output projection), so each prediction depends on its own token only: MLP neuron
``(op, i)`` fires for the step tokens of ``(op, i)`` and writes the answer's logit. In the *rerouted*
model, composite F tokens are answered by a separate set of neurons N_F' instead, while primitive F prompts
still run through N_F: the composites then do not route through F's part.
"""

import torch

from modlens.masks import Mask
from modlens.models import Model
from modlens.models.factory import tiny_hf_model
from modlens.models.loading import load_model
from modlens.tasks import Batch

OPS = ("F", "G", "H")
K = 8  # inputs per operation
BOS = 1
D_VOCAB = 2 + 9 * K  # pad, BOS, primitive tokens, composite tokens, answers (3K each)
D_MODEL = 80  # wider than the vocabulary: one-hot embeddings and unembedding
D_MLP = 4 * K  # N_F, N_G, N_H, N_F'
GAIN = 2.5  # written logit per unit of neuron activation (a firing neuron reaches about 4.8)
BIAS = -4.0  # neurons stay off (GELU(-4.1) ~ 0) unless their token is present


def primitive_token(op: str, i: int) -> int:
    return 2 + OPS.index(op) * K + i


def composite_token(op: str, i: int) -> int:
    return 2 + 3 * K + OPS.index(op) * K + i


def answer_token(op: str, i: int) -> int:
    return 2 + 6 * K + OPS.index(op) * K + i


def neurons(op: str) -> list[int]:
    """The neurons of operation ``op``; ``"F'"`` names the rerouted model's composite-F neurons."""
    return list(range(3 * K, 4 * K)) if op == "F'" else list(range(OPS.index(op) * K, (OPS.index(op) + 1) * K))


def reuse_model(*, rerouted: bool = False) -> Model:
    """The hand-written model; ``rerouted``: composite F steps are computed by N_F' instead of N_F."""
    hf = tiny_hf_model("gpt_neox", d_vocab=D_VOCAB, n_layers=1, d_model=D_MODEL, n_heads=4, d_mlp=D_MLP, n_ctx=8)
    layer = hf.gpt_neox.layers[0]
    with torch.no_grad():
        for p in hf.parameters():
            p.zero_()
        for ln in (layer.input_layernorm, layer.post_attention_layernorm, hf.gpt_neox.final_layer_norm):
            ln.weight.fill_(1.0)
        hf.gpt_neox.embed_in.weight[:, :D_VOCAB] = torch.eye(D_VOCAB)
        hf.lm_head.weight[:, :D_VOCAB] = torch.eye(D_VOCAB)
        w_in, w_out = layer.mlp.dense_h_to_4h.weight, layer.mlp.dense_4h_to_h.weight  # [d_mlp, d], [d, d_mlp]
        layer.mlp.dense_h_to_4h.bias.fill_(BIAS)
        for op in OPS:
            for i in range(K):
                n = neurons(op)[i]
                w_in[n, primitive_token(op, i)] = 1.0
                composite_neuron = neurons("F'")[i] if rerouted and op == "F" else n
                w_in[composite_neuron, composite_token(op, i)] = 1.0
                w_out[answer_token(op, i), n] = GAIN
                w_out[answer_token(op, i), composite_neuron] = GAIN
    return load_model(hf)


def _steps(op: str, n: int, gen: torch.Generator, token_of) -> tuple[torch.Tensor, torch.Tensor]:
    i = torch.randint(0, K, (n,), generator=gen)
    return torch.tensor([token_of(op, int(x)) for x in i]), torch.tensor([answer_token(op, int(x)) for x in i])


def _batch(first: str, second: str, n: int, seed: int, token_of, task: str) -> Batch:
    gen = torch.Generator().manual_seed(seed)
    s1, a1 = _steps(first, n, gen, token_of)
    s2, a2 = _steps(second, n, gen, token_of)
    tokens = torch.stack([torch.full((n,), BOS), s1, a1, s2, a2], dim=1)
    answers = torch.zeros_like(tokens, dtype=torch.bool)
    answers[:, [2, 4]] = True
    return Batch(tokens, answers, task)


def primitive_batch(op: str, n: int, *, seed: int = 0) -> Batch:
    """``n`` prompts of ``op`` alone (two independent steps of it)."""
    return _batch(op, op, n, seed, primitive_token, op)


def composite_batch(first: str, second: str, n: int, *, seed: int = 0) -> Batch:
    """``n`` prompts of the composite: ``first`` then ``second``, in composite tokens."""
    return _batch(first, second, n, seed, composite_token, first + second)


COMPOSITES = [a + b for a in OPS for b in OPS if a != b]


def reference_batch(n_each: int = 16, *, seed: int = 99) -> Batch:
    """The fixed reference of mean ablation: every primitive and composite alike."""
    parts = [primitive_batch(op, n_each, seed=seed + k) for k, op in enumerate(OPS)]
    parts += [composite_batch(c[0], c[1], n_each, seed=seed + 10 + k) for k, c in enumerate(COMPOSITES)]
    return Batch.concat(parts, task="reference")


def neuron_mask(model: Model, *ops: str) -> Mask:
    """The component mask keeping exactly the neurons of ``ops``."""
    full = Mask.full(model.spec)
    units = {"head": torch.zeros_like(full.units["head"]), "neuron": torch.zeros_like(full.units["neuron"])}
    for op in ops:
        units["neuron"][0, neurons(op)] = True
    return full.replace(units)
