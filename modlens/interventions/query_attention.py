"""A decoder layer's attention with queries at a few positions only (keys and values at all of them).

When a metric reads the last layer's output at a few positions, that layer's queries, attention
weights, output projection and MLP are needed there alone; only its keys and values need every
position. The same code, with queries everywhere, is the sweep's attention for every layer it resumes.
The arithmetic follows Hugging Face's eager attention of GPT-NeoX, GPT-2 and Llama (grouped-query
attention included) step by step, so it agrees with the module to float rounding; ``DecoderStack``
checks that on the clean batch before a sweep relies on it.

In narrow models with few rotary dimensions per head (this tool's family: 4), Hugging Face's rotary
embedding (slices and concatenations of rows shorter than a SIMD vector) costs more than the projection.
There ``rotate_half``, a fixed signed permutation of each head's rotary dimensions, is folded into extra
projection columns (the "partner" of each rotary dimension) and the rotation becomes two in-place
operations (see ``QueryAttention._projections_for`` for when).
"""

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from modlens._typing import Float, Int, Tensor
from modlens.models.modules import LLAMA_LAYOUT, MODULE_PATHS


@dataclass
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
    _projections: dict[int, "_Projections"] = field(default_factory=dict)

    def __call__(
        self,
        normed: Float[Tensor, "batch pos d_model"],
        positions: Int[Tensor, " n"] | None,
        attn_kwargs: dict[str, Any],
    ) -> Float[Tensor, "batch n d_model"]:
        """The attention output at ``positions`` (``None``: all) of a layer whose normalised input is ``normed``.

        ``attn_kwargs`` are the keyword arguments the attention module was called with on the clean pass
        (``attention_mask``, ``position_embeddings``); they depend on positions, not on the batch rows.
        """
        b, p, _ = normed.shape
        h, g, dh = self.n_heads, self.n_kv_heads, self.d_head
        rotary = attn_kwargs.get("position_embeddings")
        dims = 0 if rotary is None else rotary[0].shape[-1]
        proj = self._projections_for(dims)
        at = slice(None) if positions is None else positions  # the query positions
        n = p if positions is None else len(positions)
        q_all = _project(normed[:, at], proj.q_weight, proj.q_bias)
        kv_all = _project(normed, proj.kv_weight, proj.kv_bias)
        q, k, v = q_all[..., : h * dh], kv_all[..., : g * dh], kv_all[..., g * dh : 2 * g * dh]
        if rotary is not None:
            cos, sin = rotary[0][:, :p], rotary[1][:, :p]
            with_partners = proj.partner_dims > 0
            q_partner = q_all[..., h * dh :].view(b, n, h, dims) if with_partners else None
            k_partner = kv_all[..., 2 * g * dh :].view(b, p, g, dims) if with_partners else None
            _rotate(q.view(b, n, h, dh), q_partner, cos[:, at], sin[:, at])
            _rotate(k.view(b, p, g, dh), k_partner, cos, sin)
        # Query heads sharing a key-value head (grouped-query attention) go side by side along the query
        # axis, so one matmul per key-value head serves them all without copying keys and values.
        q = q.reshape(b, n, h, dh).permute(0, 2, 1, 3).reshape(b, g, (h // g) * n, dh)
        scores = (q @ k.view(b, p, g, dh).permute(0, 2, 3, 1)).mul_(self.scaling)
        scores = scores.view(b, h, n, p)
        mask = attn_kwargs.get("attention_mask")
        if mask is not None:
            rows = mask[..., :p, :p][..., at, :]
            scores = (
                scores.masked_fill_(~rows, torch.finfo(scores.dtype).min)
                if rows.dtype == torch.bool
                else scores.add_(rows)
            )
        weights = F.softmax(scores, dim=-1, dtype=torch.float32).to(v.dtype)
        out = weights.view(b, g, (h // g) * n, p) @ v.view(b, p, g, dh).transpose(1, 2)
        out = out.view(b, h, n, dh).transpose(1, 2).reshape(b, n, h * dh)
        result = self.o_proj(out)
        return result[0] if isinstance(result, tuple) else result

    def _projections_for(self, dims: int) -> "_Projections":
        """The projections, with the partner columns of ``dims`` rotary dimensions per head where they pay.

        Partners cost ``d_model`` multiply-adds per rotated element; they replace elementwise work that is
        slow when each rotated half is shorter than a SIMD vector (``_SHORT_HALF``, as in Pythia and this
        tool's models). Measured on 2 CPU cores (whole GPT-NeoX layers, 2048 tokens; 4, 8 and 16 rotary
        dimensions per head): 7-16% faster at d_model 64, even at 128 and 256, 3-5% slower at 512 and 768;
        so only narrow models (``_PARTNER_MAX_WIDTH``) get them. Elsewhere the rotation runs as Hugging
        Face runs it.
        """
        if dims not in self._projections:
            pays = 0 < dims // 2 < _SHORT_HALF and self.q_weight.shape[0] <= _PARTNER_MAX_WIDTH
            if not pays:
                self._projections[dims] = _Projections(0, self.q_weight, self.q_bias, self.kv_weight, self.kv_bias)
            else:
                h, g, dh = self.n_heads, self.n_kv_heads, self.d_head
                q_p, q_pb = _partners(self.q_weight, self.q_bias, h, dh, dims)
                k_p, k_pb = _partners(self.kv_weight, self.kv_bias, g, dh, dims)
                self._projections[dims] = _Projections(
                    partner_dims=dims,
                    q_weight=torch.cat([self.q_weight, q_p], dim=1),
                    q_bias=_joined((self.q_weight, self.q_bias), (q_p, q_pb)),
                    kv_weight=torch.cat([self.kv_weight, k_p], dim=1),
                    kv_bias=_joined((self.kv_weight, self.kv_bias), (k_p, k_pb)),
                )
        return self._projections[dims]


_SHORT_HALF = 16
"""Rotated halves shorter than this many elements (one AVX-512 vector of float32) get partner columns..."""
_PARTNER_MAX_WIDTH = 128
"""... in models of at most this ``d_model``."""


def _partners(weight: Tensor, bias: Tensor | None, heads: int, d_head: int, dims: int) -> tuple[Tensor, Tensor | None]:
    """Projection columns giving ``rotate_half`` of the first ``dims`` dimensions of each head's output."""
    # rotate_half(x)[i] = -x[i + half] for i < half, x[i - half] for half <= i < dims
    half = dims // 2
    source = torch.cat([torch.arange(half, dims), torch.arange(half)])
    sign = torch.cat([-torch.ones(half), torch.ones(dims - half)])
    cols = (torch.arange(heads)[:, None] * d_head + source).reshape(-1).to(weight.device)
    signs = sign.repeat(heads).to(weight.device, weight.dtype)
    return weight[:, cols] * signs, None if bias is None else bias[cols] * signs


@dataclass(frozen=True)
class _Projections:
    """Input-major projection weights: queries ``[q | q partners]``, keys and values ``[k | v | k partners]``
    (partners: ``rotate_half`` of the first ``partner_dims`` dimensions of each head folded in; none if 0)."""

    partner_dims: int
    q_weight: Tensor
    q_bias: Tensor | None
    kv_weight: Tensor
    kv_bias: Tensor | None


def _joined(*parts: tuple[Tensor, Tensor | None]) -> Tensor | None:
    """The biases of projections ``(weight, bias)`` side by side (zeros for one without); ``None`` if none has one."""
    if all(bias is None for _, bias in parts):
        return None
    return torch.cat([w.new_zeros(w.shape[1]) if bias is None else bias for w, bias in parts])


def _project(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    flat = x.reshape(-1, x.shape[-1])
    out = flat @ weight if bias is None else torch.addmm(bias, flat, weight)
    return out.view(*x.shape[:-1], -1)


def _rotate(x: Float[Tensor, "batch pos head d_head"], partner: Tensor | None, cos: Tensor, sin: Tensor) -> None:
    """Rotary embedding of the first ``cos.shape[-1]`` dims of each head, in place: ``x * cos + rotate_half(x) * sin``.

    ``partner``: ``rotate_half(x)`` already projected; computed here (as Hugging Face does) when ``None``.
    """
    dims = cos.shape[-1]
    rot = x[..., :dims]
    if partner is None:
        half = dims // 2
        partner = torch.cat((-rot[..., half:], rot[..., :half]), dim=-1)
    rot.mul_(cos.unsqueeze(2)).addcmul_(partner, sin.unsqueeze(2))


def query_attention(attn: Any, architecture: str, n_heads: int, n_kv_heads: int, d_head: int) -> QueryAttention:
    """The split projections of a GPT-NeoX, GPT-2 or Llama-layout attention module (submodules differ by family)."""
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
    elif MODULE_PATHS.get(architecture) is LLAMA_LAYOUT:
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
