"""Spectral split of a weight change: change of singular values versus rotation of singular subspaces.

For ``A → B``, Mirsky's inequality gives ``‖σ(B) − σ(A)‖₂ ≤ ‖B − A‖_F``, with equality when ``B`` keeps ``A``'s
singular vectors. So ``sv_share = ‖σ(B) − σ(A)‖² / ‖B − A‖²_F`` in [0, 1] is the share of the change that a
pure rescaling of singular values (as in Transformer², Sun et al. 2025) could produce; the rest is rotation.
Rotation is also measured directly: principal angles between the top-k singular subspaces.
"""

import contextlib
import functools
import operator
from collections.abc import Callable
from dataclasses import dataclass

import torch

from modlens._typing import Float, Tensor
from modlens.drift.cka import _dot
from modlens.threads import parallel_map, single_threaded


@dataclass(frozen=True)
class SpectralSplit:
    """Spectral change of a stack of matrices; every field has the stack's leading shape.

    Attributes:
        sv_rel_change: ``‖σ(B) − σ(A)‖₂ / ‖σ(A)‖₂``.
        sv_share: ``‖σ(B) − σ(A)‖² / ‖B − A‖²_F`` (NaN where ``B == A``).
        angle_in: mean principal angle, in degrees, between the top-k left singular subspaces
            (the input side in TransformerLens ``[d_in, d_out]`` layout).
        angle_out: the same for the right singular subspaces (the output side).
    """

    sv_rel_change: Tensor
    sv_share: Tensor
    angle_in: Tensor
    angle_out: Tensor


def spectral_split(
    base: Float[Tensor, "*stack rows cols"], tuned: Float[Tensor, "*stack rows cols"], *, top_k: int = 8
) -> SpectralSplit:
    """Splits the change ``base → tuned`` of each matrix in a stack into singular values and rotation.

    Args:
        base: matrices before fine-tuning, any leading stack dimensions (layers, heads).
        tuned: the same matrices after.
        top_k: size of the singular subspaces compared (capped at the smaller matrix side). Angles are
            only meaningful where the k-th and (k+1)-th singular values are well separated.
    """
    return _split(base.detach(), tuned.detach(), frobenius_sums(base.detach(), tuned.detach())[..., 3], top_k)


def frobenius_sums(
    a: Float[Tensor, "*stack rows cols"], b: Float[Tensor, "*stack rows cols"]
) -> Float[Tensor, "*stack 4"]:
    """``(‖A‖², ‖B‖², ⟨A, B⟩, ‖B − A‖²)`` (Frobenius) of each pair of matrices in two stacks, in float64.

    Dot products (one pass each, no temporaries) over float64 row chunks; the difference is taken in
    float64, where subtracting two float32 numbers is exact, so an unchanged matrix gives exactly 0.
    """

    def sums(x: Tensor, y: Tensor) -> Tensor:
        x, y = x.flatten(-2), y.flatten(-2)
        d = y - x
        return torch.stack([_dot(x, x), _dot(y, y), _dot(x, y), _dot(d, d)], -1)

    return _chunked(sums, a, b)


def _split(base: Tensor, tuned: Tensor, diff_sq: Tensor, top_k: int) -> SpectralSplit:
    """``spectral_split`` given ``‖tuned − base‖²_F`` per matrix (callers that have it already save a pass)."""
    k = max(1, min(top_k, base.shape[-1], base.shape[-2]))
    if torch.equal(base, tuned):  # frozen weights: one decomposition serves both (the result is the same)
        sa, ua, va = sb, ub, vb = _svd(base, k)
    else:  # side by side on two threads when torch may use two (parallel_map then pins one intra-op thread each)
        workers = min(2, torch.get_num_threads())
        svd = functools.partial(_svd, k=k, pinned=workers > 1)
        (sa, ua, va), (sb, ub, vb) = parallel_map(svd, (base, tuned), workers=workers)
    sv_delta = torch.linalg.vector_norm(sb - sa, dim=-1)
    total = diff_sq.sqrt()
    sv_share = torch.where(total > 0, (sv_delta / total.clamp_min(1e-300)) ** 2, torch.nan).clamp(max=1.0)
    return SpectralSplit(
        sv_rel_change=sv_delta / torch.linalg.vector_norm(sa, dim=-1).clamp_min(1e-300),
        sv_share=sv_share,
        angle_in=_mean_principal_angle(ua, ub),
        angle_out=_mean_principal_angle(va, vb),
    )


def principal_angles(u: Float[Tensor, "*stack n k"], v: Float[Tensor, "*stack n k"]) -> Float[Tensor, "*stack k"]:
    """Principal angles (radians, ascending) between the column spans of two orthonormal bases.

    Uses both cosines (``svdvals(uᵀv)``) and sines (``svdvals(v − u uᵀv)``): ``arccos`` alone loses all
    precision near zero, where the angles of a small fine-tuning change live.
    """
    overlap = u.mT @ v
    with single_threaded():
        cosines = torch.linalg.svdvals(overlap)  # descending: smallest angle first
        sines = torch.linalg.svdvals(v - u @ overlap).flip(-1)  # ascending: smallest angle first
    return torch.atan2(sines, cosines)


def _mean_principal_angle(u: Tensor, v: Tensor) -> Tensor:
    return torch.rad2deg(principal_angles(u, v).mean(-1))


_CHUNK_ROWS = 1024


def _chunked(fn: Callable[[Tensor, Tensor], Tensor], a: Tensor, b: Tensor) -> Tensor:
    """Sums ``fn`` (a reduction over the row axis) over float64 row chunks, so a large embedding matrix is
    never copied to float64 whole. Wide matrices are chunked along their columns instead (``fn`` then sees
    the transposes, so it must not care: Frobenius sums don't)."""
    if a.shape[-1] > a.shape[-2]:
        a, b = a.mT, b.mT
    parts = (
        fn(a[..., i : i + _CHUNK_ROWS, :].to(torch.float64), b[..., i : i + _CHUNK_ROWS, :].to(torch.float64))
        for i in range(0, a.shape[-2], _CHUNK_ROWS)
    )
    return functools.reduce(operator.add, parts)


def _svd(w: Tensor, k: int, *, pinned: bool = False) -> tuple[Tensor, Tensor, Tensor]:
    """All singular values (descending) and the top-k left/right singular vectors, from the eigendecomposition
    of the smaller float64 Gram matrix: far faster than ``torch.linalg.svd`` on CPU for tall or wide matrices,
    and accurate for every singular value above ~1e-8 of the largest. ``pinned``: the caller already holds
    torch at one intra-op thread (the setting must not be touched from a worker thread)."""
    wide = w.shape[-2] <= w.shape[-1]
    tall = w.mT if wide else w  # Gram of the small side = Σ over rows of the tall view
    gram = _chunked(lambda a, _: a.mT @ a, tall, tall)
    with contextlib.nullcontext() if pinned else single_threaded():
        evals, evecs = torch.linalg.eigh(gram)
    s = evals.flip(-1).clamp_min(0).sqrt()
    top = evecs.flip(-1)[..., :k]
    safe = torch.where(s[..., :k] > 0, s[..., :k], torch.ones_like(s[..., :k]))
    other = (
        torch.cat(
            [tall[..., i : i + _CHUNK_ROWS, :].to(torch.float64) @ top for i in range(0, tall.shape[-2], _CHUNK_ROWS)],
            dim=-2,
        )
        / safe[..., None, :]
    )
    return (s, top, other) if wide else (s, other, top)
