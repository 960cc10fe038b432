"""Centred kernel alignment (CKA): linear, debiased, RBF, and the streaming minibatch estimator.

Formulas follow Kornblith et al. 2019 and the google-research ``representation_similarity`` reference code;
minibatch CKA follows Nguyen, Raghu & Kornblith 2021 (unbiased HSIC summed over minibatches). Everything is
computed in float64 whatever the input dtype, because the debiased estimators subtract nearly equal terms.
"""

import functools
import math
from collections.abc import Iterable

import torch

from modlens._typing import Float, Tensor

Gram = Float[Tensor, "batch batch"]


def linear_cka(x: Float[Tensor, "batch feature_x"], y: Float[Tensor, "batch feature_y"]) -> float:
    """Linear CKA ``‖YᵀX‖²_F / (‖XᵀX‖_F ‖YᵀY‖_F)`` on column-centred features (Kornblith et al. 2019).

    Args:
        x: one representation, one row per example.
        y: another representation of the same examples (widths may differ).
    """
    return _feature_space_cka(x, y, debiased=False)


def debiased_cka(x: Float[Tensor, "batch feature_x"], y: Float[Tensor, "batch feature_y"]) -> float:
    """Linear CKA with the unbiased HSIC estimator (U-centred Gram matrices); needs at least 4 examples."""
    return _feature_space_cka(x, y, debiased=True)


def rbf_cka(
    x: Float[Tensor, "batch feature_x"], y: Float[Tensor, "batch feature_y"], *, threshold: float = 0.5
) -> float:
    """CKA with Gaussian kernels whose bandwidth is ``threshold`` times the median pairwise distance.

    Args:
        x: one representation, one row per example.
        y: another representation of the same examples.
        threshold: bandwidth as a fraction of the median distance (the reference uses 0.5).
    """
    return cka_from_grams(gram_rbf(x, threshold=threshold), gram_rbf(y, threshold=threshold))


def gram_linear(x: Float[Tensor, "batch feature"]) -> Float[Tensor, "batch batch"]:
    """The linear-kernel Gram matrix ``X Xᵀ`` (float64)."""
    x = x.to(torch.float64)
    return x @ x.T


def gram_rbf(x: Float[Tensor, "batch feature"], *, threshold: float = 1.0) -> Float[Tensor, "batch batch"]:
    """A Gaussian-kernel Gram matrix with bandwidth ``threshold`` × median pairwise distance (float64)."""
    if threshold <= 0:
        raise ValueError(f"threshold must be positive, got {threshold}")
    dots = gram_linear(x)
    sq_norms = torch.diagonal(dots)
    sq_dist = (sq_norms[:, None] + sq_norms[None, :] - 2 * dots).clamp_min(0)
    # numpy's median (the reference) averages the two middle values; torch.median takes the lower one.
    median = torch.quantile(sq_dist.flatten(), 0.5, interpolation="linear") if sq_dist.numel() < 2**24 else None
    if median is None:
        flat = sq_dist.flatten().sort().values
        mid = flat.numel() // 2
        median = (flat[mid - 1] + flat[mid]) / 2 if flat.numel() % 2 == 0 else flat[mid]
    return torch.exp(-sq_dist / (2 * threshold**2 * median))


def center_gram(gram: Float[Tensor, "batch batch"], *, unbiased: bool = False) -> Float[Tensor, "batch batch"]:
    """Double-centres a symmetric Gram matrix; ``unbiased`` applies U-centring (zero diagonal, n−2 corrections)."""
    gram = gram.to(torch.float64).clone()
    n = gram.shape[0]
    if unbiased:
        if n < 4:
            raise ValueError(f"unbiased HSIC needs at least 4 examples, got {n}")
        gram.fill_diagonal_(0)
        means = gram.sum(0) / (n - 2)
        means = means - means.sum() / (2 * (n - 1))
        gram = gram - means[:, None] - means[None, :]
        gram.fill_diagonal_(0)
    else:
        means = gram.mean(0)
        means = means - means.mean() / 2
        gram = gram - means[:, None] - means[None, :]
    return gram


def cka_from_grams(gram_x: Gram, gram_y: Gram, *, debiased: bool = False) -> float:
    """CKA of two Gram matrices over the same examples (biased or U-centred HSIC)."""
    cx = center_gram(gram_x, unbiased=debiased)
    cy = center_gram(gram_y, unbiased=debiased)
    return float((cx * cy).sum() / (torch.linalg.norm(cx) * torch.linalg.norm(cy)))


class MinibatchCKA:
    """Streaming CKA: sums HSIC over minibatches, so memory does not grow with the number of examples.

    ``value()`` is ``Σ_b HSIC(K_b, L_b) / sqrt(Σ_b HSIC(K_b, K_b) · Σ_b HSIC(L_b, L_b))`` (Nguyen et al. 2021)
    with linear kernels. With ``debiased=True`` (the default, as in the paper) each term is the unbiased
    estimator, so the result converges to the full-data debiased CKA as minibatches accumulate; with
    ``debiased=False`` it is the biased estimator, equal to ``linear_cka`` when there is a single minibatch.

    Example:
        >>> acc = MinibatchCKA()
        >>> for x, y in pairs:
        ...     acc.update(x, y)
        >>> acc.value()
    """

    def __init__(self, *, debiased: bool = True) -> None:
        self.debiased = debiased
        self.xy = 0.0
        self.xx = 0.0
        self.yy = 0.0
        self.n_examples = 0
        self.n_batches = 0

    def update(self, x: Float[Tensor, "batch feature_x"], y: Float[Tensor, "batch feature_y"]) -> None:
        """Adds one minibatch (rows of ``x`` and ``y`` are the same examples)."""
        if x.shape[0] != y.shape[0]:
            raise ValueError(f"x has {x.shape[0]} examples, y has {y.shape[0]}")
        # Centring the columns first changes no HSIC estimate (linear kernels) but keeps float32 Gram
        # products accurate when activations share a large mean direction, as residual streams do.
        x = x.to(torch.float32)
        y = y.to(torch.float32)
        x = x - x.mean(0)
        y = y - y.mean(0)
        self.update_grams(x @ x.T, y @ y.T)

    def update_grams(self, gram_x: Gram, gram_y: Gram) -> None:
        """Adds one minibatch given its linear Gram matrices (lets several estimators share one product)."""
        if self.debiased and gram_x.shape[0] < 4:
            raise ValueError(f"unbiased HSIC needs at least 4 examples, got {gram_x.shape[0]}")
        xy, xx, yy = hsic_terms(gram_moments(gram_x, gram_y), debiased=self.debiased).tolist()
        self.xy += xy
        self.xx += xx
        self.yy += yy
        self.n_examples += int(gram_x.shape[0])
        self.n_batches += 1

    def value(self) -> float:
        """The CKA estimate so far (NaN before any data or when a representation is constant)."""
        denom = math.sqrt(self.xx * self.yy)
        return self.xy / denom if denom > 0 else math.nan


def minibatch_cka(
    pairs: Iterable[tuple[Float[Tensor, "batch feature_x"], Float[Tensor, "batch feature_y"]]],
    *,
    debiased: bool = True,
) -> float:
    """Minibatch CKA over an iterable of ``(x, y)`` minibatches; see ``MinibatchCKA``."""
    acc = MinibatchCKA(debiased=debiased)
    for x, y in pairs:
        acc.update(x, y)
    return acc.value()


def gram_moments(
    gram_x: Float[Tensor, "*stack batch batch"], gram_y: Float[Tensor, "*stack batch batch"]
) -> dict[str, Tensor]:
    """The sums every HSIC estimate of two symmetric Gram matrices needs, in float64, per matrix of a stack.

    ``xy``, ``xx``, ``yy``: Frobenius products ``Σ K∘L``; ``rx``, ``ry``: row sums; ``dx``, ``dy``: diagonals.
    Both ``hsic_terms`` estimators follow from these in O(n) more work, with no centred ``n × n`` copies.
    """
    kx = gram_x.to(torch.float64).flatten(-2)
    ky = gram_y.to(torch.float64).flatten(-2)
    n = gram_x.shape[-1]
    return {
        "xy": _dot(kx, ky),
        "xx": _dot(kx, kx),
        "yy": _dot(ky, ky),
        "rx": kx.unflatten(-1, (n, n)).sum(-1),
        "ry": ky.unflatten(-1, (n, n)).sum(-1),
        "dx": kx[..., :: n + 1],
        "dy": ky[..., :: n + 1],
    }


def feature_gram_moments(
    x: Float[Tensor, "*stack batch feature_x"], y: Float[Tensor, "*stack batch feature_y"], *, block: int = 128
) -> dict[str, Tensor]:
    """``gram_moments(x xᵀ, y yᵀ)`` without forming either Gram matrix whole.

    The Grams are symmetric, so each off-diagonal block of ``block`` rows is computed once and counted
    twice: with 4 blocks that is 10 of 16 block products, and the largest temporary is one block. The
    products are taken in the inputs' dtype (float32 activations), the sums in float64.
    """
    n = x.shape[-2]
    zeros = functools.partial(torch.zeros, dtype=torch.float64, device=x.device)
    out = {key: zeros(x.shape[:-2]) for key in ("xy", "xx", "yy")}
    out |= {key: zeros((*x.shape[:-2], n)) for key in ("rx", "ry", "dx", "dy")}
    for i in range(0, n, block):
        rows_i = slice(i, i + block)
        for j in range(i, n, block):
            rows_j = slice(j, j + block)
            kx = (x[..., rows_i, :] @ x[..., rows_j, :].mT).to(torch.float64)
            ky = (y[..., rows_i, :] @ y[..., rows_j, :].mT).to(torch.float64)
            weight = 1.0 if i == j else 2.0
            fx, fy = kx.flatten(-2), ky.flatten(-2)
            out["xy"] += weight * _dot(fx, fy)
            out["xx"] += weight * _dot(fx, fx)
            out["yy"] += weight * _dot(fy, fy)
            out["rx"][..., rows_i] += kx.sum(-1)
            out["ry"][..., rows_i] += ky.sum(-1)
            if i == j:
                out["dx"][..., rows_i] = kx.diagonal(dim1=-2, dim2=-1)
                out["dy"][..., rows_i] = ky.diagonal(dim1=-2, dim2=-1)
            else:  # the transposed block's rows
                out["rx"][..., rows_j] += kx.sum(-2)
                out["ry"][..., rows_j] += ky.sum(-2)
    return out


def hsic_terms(moments: dict[str, Tensor], *, debiased: bool) -> Float[Tensor, "*stack 3"]:
    """``(HSIC(K, L), HSIC(K, K), HSIC(L, L))`` from ``gram_moments``, unnormalised as ``(center_gram(K) *
    center_gram(L)).sum()`` is (biased), or with U-centring (``debiased``: needs n ≥ 4)."""
    n = moments["rx"].shape[-1]
    pairs = (("xy", "x", "y"), ("xx", "x", "x"), ("yy", "y", "y"))
    out = []
    for frob, a, b in pairs:
        rows_a, rows_b = moments[f"r{a}"], moments[f"r{b}"]
        if debiased:
            diag_a, diag_b = moments[f"d{a}"], moments[f"d{b}"]
            # The U-statistic of Song et al. (2012): K and L with their diagonals set to zero.
            trace = moments[frob] - (diag_a * diag_b).sum(-1)
            rows_a, rows_b = rows_a - diag_a, rows_b - diag_b
            term = trace + rows_a.sum(-1) * rows_b.sum(-1) / ((n - 1) * (n - 2))
            term = term - 2 / (n - 2) * (rows_a * rows_b).sum(-1)
        else:  # tr(K H L H), H the centring matrix
            term = moments[frob] - 2 / n * (rows_a * rows_b).sum(-1) + rows_a.sum(-1) * rows_b.sum(-1) / n**2
        out.append(term)
    return torch.stack(out, -1)


def _feature_space_cka(x: Tensor, y: Tensor, *, debiased: bool) -> float:
    """CKA via ``d × d`` feature products: cheaper than Gram matrices when examples outnumber features."""
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"x has {x.shape[0]} examples, y has {y.shape[0]}")
    x = x.to(torch.float64)
    y = y.to(torch.float64)
    x = x - x.mean(0, keepdim=True)
    y = y - y.mean(0, keepdim=True)
    xy = torch.linalg.norm(x.T @ y) ** 2
    xx = torch.linalg.norm(x.T @ x)
    yy = torch.linalg.norm(y.T @ y)
    if debiased:
        n = x.shape[0]
        if n < 4:
            raise ValueError(f"debiased CKA needs at least 4 examples, got {n}")
        rows_x = (x * x).sum(1)
        rows_y = (y * y).sum(1)
        xy = _debiased_dot(xy, rows_x, rows_y, n)
        xx = torch.sqrt(_debiased_dot(xx**2, rows_x, rows_x, n))
        yy = torch.sqrt(_debiased_dot(yy**2, rows_y, rows_y, n))
    return float(xy / (xx * yy))


def _debiased_dot(xty: Tensor, rows_x: Tensor, rows_y: Tensor, n: int) -> Tensor:
    """Unbiased HSIC numerator from feature-space sums (the reference's ``_debiased_dot_product_similarity``)."""
    return xty - n / (n - 2.0) * (rows_x @ rows_y) + rows_x.sum() * rows_y.sum() / ((n - 1) * (n - 2))


def _dot(x: Tensor, y: Tensor) -> Tensor:
    """Dot products along the last axis as a matrix product (BLAS, no elementwise temporary)."""
    return (x.unsqueeze(-2) @ y.unsqueeze(-1))[..., 0, 0]
