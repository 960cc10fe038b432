"""CKA: published reference values, invariants, and the minibatch estimator against the full-batch value."""

import numpy as np
import pytest
import torch

from modlens.drift import (
    MinibatchCKA,
    center_gram,
    cka_from_grams,
    debiased_cka,
    gram_linear,
    linear_cka,
    minibatch_cka,
    rbf_cka,
)
from modlens.drift.cka import feature_gram_moments, gram_moments, hsic_terms


@pytest.fixture(scope="module")
def reference_xy() -> tuple[torch.Tensor, torch.Tensor]:
    """The google-research ``representation_similarity/Demo.ipynb`` example."""
    np.random.seed(1337)
    x = np.random.randn(100, 10)
    y = np.random.randn(100, 10) + x
    return torch.from_numpy(x), torch.from_numpy(y)


def test_reference_values(reference_xy):
    x, y = reference_xy
    assert round(linear_cka(x, y), 5) == pytest.approx(0.55761, abs=1e-12)
    assert round(debiased_cka(x, y), 5) == pytest.approx(0.51346, abs=1e-12)
    assert round(rbf_cka(x, y, threshold=0.5), 5) == pytest.approx(0.65483, abs=1e-12)


def test_feature_and_gram_forms_agree(reference_xy):
    x, y = reference_xy
    gx, gy = gram_linear(x), gram_linear(y)
    assert cka_from_grams(gx, gy) == pytest.approx(linear_cka(x, y), abs=1e-12)
    assert cka_from_grams(gx, gy, debiased=True) == pytest.approx(debiased_cka(x, y), abs=1e-12)


@pytest.mark.parametrize("metric", [linear_cka, debiased_cka, rbf_cka])
def test_self_similarity_is_one(reference_xy, metric):
    x, _ = reference_xy
    assert metric(x, x) == pytest.approx(1.0, abs=1e-10)


@pytest.mark.parametrize("metric", [linear_cka, debiased_cka, rbf_cka])
def test_invariant_to_rotation_and_isotropic_scaling(reference_xy, metric):
    x, y = reference_xy
    q, _ = torch.linalg.qr(torch.randn(10, 10, dtype=torch.float64, generator=torch.Generator().manual_seed(0)))
    assert metric(x @ q * 3.7, y) == pytest.approx(metric(x, y), abs=1e-10)
    assert metric(x, 0.01 * y @ q) == pytest.approx(metric(x, y), abs=1e-10)


def test_float32_input_is_computed_in_float64(reference_xy):
    x, y = reference_xy
    assert linear_cka(x.float(), y.float()) == pytest.approx(linear_cka(x, y), abs=1e-6)


def test_minibatch_with_one_batch_equals_full_batch(reference_xy):
    x, y = reference_xy
    assert minibatch_cka([(x, y)]) == pytest.approx(debiased_cka(x, y), abs=1e-6)  # float32 Gram inside
    assert minibatch_cka([(x, y)], debiased=False) == pytest.approx(linear_cka(x, y), abs=1e-6)


def test_minibatch_converges_to_full_batch_debiased():
    """On 10,000 draws from one distribution, 500-example minibatches estimate the full-data debiased CKA."""
    gen = torch.Generator().manual_seed(0)
    n, d, m = 10_000, 16, 500
    x = torch.randn(n, d, generator=gen, dtype=torch.float64)
    mix = torch.randn(d, d, generator=gen, dtype=torch.float64)
    y = torch.tanh(x @ mix) + 0.5 * torch.randn(n, d, generator=gen, dtype=torch.float64)
    full = debiased_cka(x, y)
    acc = MinibatchCKA()
    errors = []
    for start in range(0, n, m):
        acc.update(x[start : start + m], y[start : start + m])
        errors.append(abs(acc.value() - full))
    assert acc.n_examples == n and acc.n_batches == 20
    assert errors[-1] < 2e-3
    assert errors[-1] < errors[0]


def test_rejects_mismatched_rows_and_tiny_batches():
    with pytest.raises((ValueError, TypeError)):  # jaxtyping catches it first when checking is on
        MinibatchCKA().update(torch.randn(5, 3), torch.randn(6, 3))
    with pytest.raises(ValueError, match="at least 4"):
        debiased_cka(torch.randn(3, 2), torch.randn(3, 2))
    assert np.isnan(MinibatchCKA().value())


@pytest.mark.parametrize("block", [3, 4, 100])
def test_blockwise_moments_equal_the_gram_moments(block):
    """Symmetric blocks (n = 10 not a multiple of the block) give the sums of the whole Gram matrices."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 10, 5, generator=gen, dtype=torch.float64) + 1
    y = torch.randn(2, 10, 7, generator=gen, dtype=torch.float64)
    got = feature_gram_moments(x, y, block=block)
    want = gram_moments(x @ x.mT, y @ y.mT)
    for key, value in want.items():
        torch.testing.assert_close(got[key], value, rtol=1e-12, atol=1e-12, msg=key)
    for debiased in (False, True):
        torch.testing.assert_close(hsic_terms(got, debiased=debiased), hsic_terms(want, debiased=debiased))


def test_hsic_terms_equal_centred_gram_products(reference_xy):
    """The moment formulas reproduce ``Σ center_gram(K) ∘ center_gram(L)``, biased and U-centred."""
    x, y = reference_xy
    kx, ky = gram_linear(x), gram_linear(y)
    for debiased in (False, True):
        cx, cy = center_gram(kx, unbiased=debiased), center_gram(ky, unbiased=debiased)
        want = torch.stack([(cx * cy).sum(), (cx * cx).sum(), (cy * cy).sum()])
        torch.testing.assert_close(hsic_terms(gram_moments(kx, ky), debiased=debiased), want, rtol=1e-10, atol=0)
