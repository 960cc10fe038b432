"""Rank correlation and permutation tests on hand-computed cases and against plain enumeration."""

import itertools

import numpy as np
import pandas as pd
import pytest

from modlens.analysis import sign_flip_test, spearman, within_group_rho, within_run_test
from modlens.analysis.permutation import within_run_permutations
from modlens.analysis.ranks import midranks


def _reference_spearman(x, y) -> float:
    """Pearson correlation of average ranks (the definition; scipy is not a dependency)."""
    return float(np.corrcoef(pd.Series(x).rank(), pd.Series(y).rank())[0, 1])


@pytest.mark.parametrize("seed", range(5))
def test_spearman_and_midranks_match_pandas_with_ties(seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 4, 12).astype(float)
    y = rng.integers(0, 3, 12).astype(float)
    assert spearman(x, y) == pytest.approx(_reference_spearman(x, y))
    np.testing.assert_allclose(midranks(np.stack([x, y])), np.stack([pd.Series(x).rank(), pd.Series(y).rank()]))


def test_constant_gives_nan():
    assert np.isnan(spearman(np.array([1.0, 2.0, 3.0]), np.array([5.0, 5.0, 5.0])))


def test_within_group_rho_hand_computed():
    # Group a: ranks (1,2,3) vs (1,3,2): ρ = 1 − 6·2/(3·8) = 0.5. Group b: reversed: ρ = −1.
    x = np.array([1.0, 2.0, 3.0, 1.0, 2.0, 3.0, 4.0])
    y = np.array([1.0, 3.0, 2.0, 4.0, 3.0, 2.0, 1.0])
    group = np.array(["a"] * 3 + ["b"] * 4)
    rho = within_group_rho(x, y, group)
    np.testing.assert_allclose(rho.per_group, [[0.5, -1.0]])
    assert rho.estimate[0] == pytest.approx((3 * 0.5 + 4 * -1.0) / 7)  # weighted by units
    # A group with a constant metric has no ρ and no weight.
    y[3:] = 2.0
    assert within_group_rho(x, y, group).estimate[0] == pytest.approx(0.5)


def test_exact_within_run_p_tiny_case():
    # One group, 3 runs × 2 checkpoints. In every run the higher-loss checkpoint has the lower value, so
    # the observed arrangement and its mirror (every run swapped) are the two most extreme of 2³ = 8.
    x = np.array([1.5, 0.8, 1.6, 0.82, 1.4, 0.79])
    y = np.array([0.0, 1.0, 0.2, 1.3, -0.1, 0.9])
    run, group = np.array([0, 0, 1, 1, 2, 2]), np.zeros(6)
    test = within_run_test(x, y, group, run, n_perm=100, rng=np.random.default_rng(0))
    assert test.exact and test.n_permutations == 8
    assert test.p_value[0] == pytest.approx(2 / 8)
    assert test.estimate[0] == pytest.approx(spearman(x, y))
    # Four runs: 2 of 16.
    x4, y4 = np.append(x, [1.45, 0.81]), np.append(y, [0.1, 1.1])
    test4 = within_run_test(x4, y4, np.zeros(8), np.repeat(np.arange(4), 2), n_perm=100, rng=np.random.default_rng(0))
    assert test4.p_value[0] == pytest.approx(2 / 16)


def test_permutations_stay_within_runs():
    run = np.array([3, 3, 3, 1, 1, 7])
    exact, is_exact = within_run_permutations(run, 100, np.random.default_rng(0))
    assert is_exact and len(exact) == 6 * 2 and len({tuple(p) for p in exact}) == 12
    drawn, is_exact = within_run_permutations(run, 5, np.random.default_rng(0))
    assert not is_exact and drawn.shape == (5, 6)
    for perms in (exact, drawn):
        assert (run[perms] == run[None, :]).all()
        assert all(sorted(p) == list(range(6)) for p in perms)


def test_null_se_matches_enumeration_of_within_run_part():
    # With one run per group-run block exchange impossible (one run per group), the null variance is the
    # within-run permutation variance, which must equal the variance over every permutation.
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=9), rng.normal(size=9)
    run, group = np.repeat(np.arange(3), 3), np.repeat(np.arange(3), 3)
    test = within_run_test(x, y, group, run, n_perm=10_000, rng=rng)
    perms, _ = within_run_permutations(run, 10_000, rng)
    values = [within_group_rho(x, y[p], group).estimate[0] for p in perms]
    assert test.se[0] == pytest.approx(np.std(values))


def test_monte_carlo_p_has_plus_one():
    rng = np.random.default_rng(0)
    x = np.tile([1.5, 0.8], 20) * (1 + 0.01 * rng.normal(size=40))
    y = -x + 0.01 * rng.normal(size=40)
    test = within_run_test(x, y, np.zeros(40), np.repeat(np.arange(20), 2), n_perm=99, rng=rng)
    assert not test.exact and test.p_value[0] == pytest.approx(1 / 100)


def test_sign_flip_exact_against_enumeration():
    d = np.array([0.3, -0.1, 0.5, 0.2])
    w = np.full(4, 0.25)
    test = sign_flip_test(d, w, n_perm=100, rng=np.random.default_rng(0))
    flips = np.array(list(itertools.product([-1, 1], repeat=4)))
    expected = np.mean(np.abs(flips @ (d * w)) >= abs(d @ w) - 1e-12)
    assert test.exact and test.p_value[0] == pytest.approx(expected) and test.estimate[0] == pytest.approx(0.225)
    assert test.se[0] == pytest.approx(np.std(flips @ (d * w)))
