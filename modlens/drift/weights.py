"""Weight drift between a base and a fine-tuned model, per layer, matrix and head, from raw (unfolded) weights."""

import logging
from collections.abc import Iterator

import pandas as pd
import torch

from modlens._typing import Tensor
from modlens.drift.spectra import _split, frobenius_sums
from modlens.models import Model, check_pair

log = logging.getLogger(__name__)

ATTENTION_MATRICES = ("W_Q", "W_K", "W_V", "W_O")
MLP_MATRICES = ("W_in", "W_gate", "W_out")
EMBEDDING_MATRICES = ("W_E", "W_pos", "W_U")
_SLICE_WEIGHTS = 2**20
WEIGHT_COLUMNS = (
    "layer",
    "matrix",
    "head",
    "n_params",
    "rel_change",
    "cosine",
    "sv_rel_change",
    "sv_share",
    "angle_in",
    "angle_out",
)


def run_weight_drift(base: Model, tuned: Model, *, top_k: int = 8) -> pd.DataFrame:
    """Drift of every weight matrix from ``base`` to ``tuned``: one row per layer, matrix and head.

    Rows: for each layer, one row per matrix (``W_Q W_K W_V W_O W_in [W_gate] W_out``) with ``head`` missing,
    plus one row per head for the attention matrices. Under grouped-query attention ``W_K``/``W_V`` rows are
    per key/value head (``head`` is the kv-head index), so each real head is counted once, not once per query
    head sharing it. ``W_E``, ``W_pos`` (learned positions only) and ``W_U`` get rows of their own with
    ``layer`` missing. Weights are read from the bridges in TransformerLens layout (``[d_in, d_out]``), never
    processed (no LayerNorm folding, no centring).

    Columns:
        layer, matrix, head: where (``layer``/``head`` are nullable integers).
        n_params: number of weights compared.
        rel_change: ``‖B − A‖_F / ‖A‖_F``.
        cosine: cosine between the flattened matrices.
        sv_rel_change, sv_share, angle_in, angle_out: the spectral split (see ``spectral_split``).

    Args:
        base: the model before fine-tuning.
        tuned: the model after; must have the same architecture and shapes.
        top_k: size of the singular subspaces whose principal angles are reported.

    Raises:
        PairMismatchError: the two models cannot be compared weight by weight.
    """
    check_pair(base, tuned)
    rows: list[dict[str, object]] = []
    embeddings: tuple[Tensor, Tensor] | None = None
    with torch.no_grad():
        for matrix, a, b in _matrix_pairs(base, tuned):
            if matrix == "W_E":
                embeddings = (a, b)
            if matrix == "W_U" and embeddings is not None and _tied(embeddings, (a, b)):
                rows.extend(_transposed(row, matrix) for row in rows if row["matrix"] == "W_E")
            else:
                rows.extend(_rows(matrix, a, b, top_k))
    frame = pd.DataFrame(rows, columns=list(WEIGHT_COLUMNS))
    frame["layer"] = frame["layer"].astype("Int64")
    frame["head"] = frame["head"].astype("Int64")
    return frame


def _matrix_pairs(base: Model, tuned: Model) -> Iterator[tuple[str, Tensor, Tensor]]:
    """``(matrix, base weights, tuned weights)`` in TransformerLens layout; layered matrices are stacked
    ``[layer, (head,) d_in, d_out]``, embeddings are plain ``[d_in, d_out]``."""
    b0, b1 = base.bridge, tuned.bridge
    for name in ("W_E", "W_pos", *ATTENTION_MATRICES, *MLP_MATRICES, "W_U"):
        try:
            a, b = getattr(b0, name), getattr(b1, name)
        except AttributeError:  # W_pos exists only for learned absolute positions
            continue
        if a is not None and b is not None:  # W_gate is None on ungated MLPs
            yield name, a.detach(), b.detach()


def _tied(embed: tuple[Tensor, Tensor], unembed: tuple[Tensor, Tensor]) -> bool:
    """Whether ``W_U`` is ``W_Eᵀ`` in both models (tied embeddings, as in GPT-2)."""
    return all(e.shape == u.mT.shape and torch.equal(e, u.mT) for e, u in zip(embed, unembed, strict=True))


def _transposed(row: dict[str, object], matrix: str) -> dict[str, object]:
    """A row of a matrix's statistics as the row of its transpose: input and output sides trade places."""
    return row | {"matrix": matrix, "angle_in": row["angle_out"], "angle_out": row["angle_in"]}


def _rows(matrix: str, a: Tensor, b: Tensor, top_k: int) -> list[dict[str, object]]:
    if matrix in EMBEDDING_MATRICES:
        return _stack_rows([None], None, matrix, a[None], b[None], top_k)
    layers = list(range(a.shape[0]))
    if matrix not in ATTENTION_MATRICES:
        return _stack_rows(layers, None, matrix, a, b, top_k)
    # A layer's attention matrix is its heads side by side: [d_model, head * d_head] for Q/K/V and
    # [head * d_head, d_model] for O.
    if matrix == "W_O":
        whole_a, whole_b = a.flatten(1, 2), b.flatten(1, 2)
    else:
        whole_a, whole_b = a.permute(0, 2, 1, 3).flatten(2, 3), b.permute(0, 2, 1, 3).flatten(2, 3)
    rows = _stack_rows(layers, None, matrix, whole_a, whole_b, top_k)
    n_heads = a.shape[1]  # n_kv_heads for W_K / W_V under grouped-query attention
    per_head = _stack_rows(layers, None, matrix, a.flatten(0, 1), b.flatten(0, 1), top_k, heads=n_heads)
    return rows + per_head


def _stack_rows(
    layers: list[int] | list[None],
    head: int | None,
    matrix: str,
    a: Tensor,
    b: Tensor,
    top_k: int,
    *,
    heads: int | None = None,
) -> list[dict[str, object]]:
    """One row per matrix of a ``[layer, d_in, d_out]`` stack, or of a ``[(layer head), d_in, d_out]`` stack
    when ``heads`` is given (all heads in one batched call: far fewer small ops)."""
    # Slices of at most ~1M weights: float64 copies and temporaries of a whole [layer, d_model, d_mlp]
    # stack of a GPT-2-small-sized model would take about a gigabyte.
    step = max(1, _SLICE_WEIGHTS // (a.shape[-2] * a.shape[-1]))
    parts = [_stats(a[i : i + step], b[i : i + step], top_k) for i in range(0, a.shape[0], step)]
    stats = {k: torch.cat([p[k] for p in parts]).tolist() for k in parts[0]}
    size = a.shape[-2] * a.shape[-1]
    index = [(layer, h) for layer in layers for h in range(heads)] if heads else [(layer, head) for layer in layers]
    return [
        {"layer": layer, "matrix": matrix, "head": h, "n_params": size} | {k: v[i] for k, v in stats.items()}
        for i, (layer, h) in enumerate(index)
    ]


def _stats(a: Tensor, b: Tensor, top_k: int) -> dict[str, Tensor]:
    """Frobenius and spectral statistics of each matrix in a stack, in float64."""
    if a.numel() <= _SLICE_WEIGHTS:  # convert once; embedding-sized matrices stay chunked (see ``_chunked``)
        a, b = a.to(torch.float64), b.to(torch.float64)
    aa, bb, ab, dd = frobenius_sums(a, b).unbind(-1)
    split = _split(a, b, dd, top_k)
    denom = (aa * bb).sqrt()
    return {
        "rel_change": dd.sqrt() / aa.sqrt().clamp_min(1e-300),
        "cosine": torch.where(denom > 0, ab / denom.clamp_min(1e-300), torch.nan),
        "sv_rel_change": split.sv_rel_change,
        "sv_share": split.sv_share,
        "angle_in": split.angle_in,
        "angle_out": split.angle_out,
    }
