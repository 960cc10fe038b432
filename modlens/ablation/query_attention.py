"""A decoder layer's attention with queries at a few positions only (keys and values at all of them).

When a metric reads the last layer's output at a few positions, that layer's queries, attention
weights, output projection and MLP are needed there alone; only its keys and values need every
position. The arithmetic follows Hugging Face's eager attention of GPT-NeoX, GPT-2 and Llama
(grouped-query attention included) step by step, so it agrees with the full layer to float rounding;
``DecoderStack`` checks that on the clean batch before a sweep relies on it.
"""

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from modlens._typing import Float, Int, Tensor


@dataclass(frozen=True)
class QueryAttention:
    """One layer's attention split into a query projection and a key-value projection.

    ``q_weight`` is ``[d_model, head * d_head]``, ``kv_weight`` ``[d_model, 2 * kv_head * d_head]``
    (keys first), both input-major; biases may be ``None``.
    """

    q_weight: Tensor
    q_bias: Tensor | None
    kv_weight: Tensor
    kv_bias: Tensor | None
    o_proj: nn.Module
    n_heads: int
    n_kv_heads: int
    d_head: int
    scaling: float

    def __call__(
        self,
        normed: Float[Tensor, "batch pos d_model"],
        positions: Int[Tensor, " n"],
        attn_kwargs: dict[str, Any],
    ) -> Float[Tensor, "batch n d_model"]:
        """The attention output at ``positions`` of a layer whose normalised input is ``normed``.

        ``attn_kwargs`` are the keyword arguments the attention module was called with on the clean pass
        (``attention_mask``, ``position_embeddings``); they depend on positions, not on the batch rows.
        """
        b, p, _ = normed.shape
        n, h, g, dh = len(positions), self.n_heads, self.n_kv_heads, self.d_head
        q = _project(normed[:, positions], self.q_weight, self.q_bias).view(b, n, h, dh)
        kv = _project(normed, self.kv_weight, self.kv_bias).view(b, p, 2, g, dh)
        k, v = kv[:, :, 0], kv[:, :, 1]
        rotary = attn_kwargs.get("position_embeddings")
        if rotary is not None:
            cos, sin = rotary
            q = _rotate(q, cos[:, positions], sin[:, positions])
            k = _rotate(k, cos[:, :p], sin[:, :p])
        # Query heads sharing a key-value head (grouped-query attention) go side by side along the query
        # axis, so one matmul per key-value head serves them all without copying keys and values.
        q = q.permute(0, 2, 1, 3).reshape(b, g, (h // g) * n, dh)
        scores = (q @ k.permute(0, 2, 3, 1)) * self.scaling
        scores = scores.view(b, h, n, p)
        mask = attn_kwargs.get("attention_mask")
        if mask is not None:
            rows = mask[..., positions, :p]
            scores = (
                scores.masked_fill(~rows, torch.finfo(scores.dtype).min) if rows.dtype == torch.bool else scores + rows
            )
        weights = F.softmax(scores, dim=-1, dtype=torch.float32).to(v.dtype)
        out = weights.view(b, g, (h // g) * n, p) @ v.transpose(1, 2)
        out = out.view(b, h, n, dh).transpose(1, 2).reshape(b, n, h * dh)
        result = self.o_proj(out)
        return result[0] if isinstance(result, tuple) else result


def _project(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    flat = x.reshape(-1, x.shape[-1])
    out = flat @ weight if bias is None else torch.addmm(bias, flat, weight)
    return out.view(*x.shape[:-1], -1)


def _rotate(x: Float[Tensor, "batch pos head d_head"], cos: Tensor, sin: Tensor) -> Tensor:
    """Rotary embedding of the first ``cos.shape[-1]`` dims of each head, as Hugging Face applies it."""
    cos, sin = cos.unsqueeze(2), sin.unsqueeze(2)
    dim = cos.shape[-1]
    rot, rest = x[..., :dim], x[..., dim:]
    half = dim // 2
    turned = torch.cat((-rot[..., half:], rot[..., :half]), dim=-1)
    return torch.cat([rot * cos + turned * sin, rest], dim=-1)


def query_attention(attn: Any, architecture: str, n_heads: int, n_kv_heads: int, d_head: int) -> QueryAttention:
    """The split projections of a GPT-NeoX, GPT-2 or Llama attention module (its submodules differ by family)."""
    d_model = n_heads * d_head
    if architecture == "GPTNeoXForCausalLM":
        # the fused projection's rows are [head, (q | k | v), d_head]
        proj = attn.query_key_value
        w = proj.weight.view(n_heads, 3, d_head, -1)
        b = None if proj.bias is None else proj.bias.view(n_heads, 3, d_head)
        # keys and values of all heads: [(k | v), head, d_head]
        q_w, kv_w = w[:, 0].reshape(d_model, -1).T, w[:, 1:].transpose(0, 1).reshape(2 * d_model, -1).T
        q_b = None if b is None else b[:, 0].reshape(-1)
        kv_b = None if b is None else b[:, 1:].transpose(0, 1).reshape(-1)
        o_proj = attn.dense
    elif architecture == "GPT2LMHeadModel":
        # Conv1D stores [in, out]; the output columns are [q | k | v]
        w, b = attn.c_attn.weight, attn.c_attn.bias
        q_w, kv_w, q_b, kv_b = w[:, :d_model], w[:, d_model:], b[:d_model], b[d_model:]
        o_proj = attn.c_proj
    elif architecture == "LlamaForCausalLM":
        q_w = attn.q_proj.weight.T
        kv_w = torch.cat([attn.k_proj.weight, attn.v_proj.weight]).T
        q_b = attn.q_proj.bias
        kv_b = None if attn.k_proj.bias is None else torch.cat([attn.k_proj.bias, attn.v_proj.bias])
        o_proj = attn.o_proj
    else:
        raise ValueError(f"no query-position attention for {architecture}")
    return QueryAttention(
        q_weight=q_w.contiguous(),
        q_bias=q_b,
        kv_weight=kv_w.contiguous(),
        kv_bias=kv_b,
        o_proj=o_proj,
        n_heads=n_heads,
        n_kv_heads=n_kv_heads,
        d_head=d_head,
        scaling=float(attn.scaling),
    )
