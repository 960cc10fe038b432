"""Permutation tests whose level holds with few pretraining runs.

Within-run test: if pretraining quality has no effect, the metric values of one run's pretrained
checkpoints are exchangeable (a run's own level, its random effect, is kept). Permuting each run's values
among its own checkpoints, independently, gives the exact null distribution of any statistic; an
unrestricted permutation or a bootstrap over seeds would not (they break or ignore the run effect).
Sign-flip test: the same for a paired difference per run (best checkpoint minus random init).

A statistic's null standard error is also returned: the permutation variance of the within-run part plus
that of the between-run part (runs exchangeable within a group), computed in closed form. The printed
interval is ``estimate ± z · se``; its null coverage is measured by ``modlens.analysis.calibration``.
"""

import itertools
import math
import zlib
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from modlens.analysis.ranks import within_group_rho

CHUNK = 4_000_000  # floats per block of (studies × permutations × units)


def rng_for(seed: int, *key: object) -> np.random.Generator:
    """A generator determined by ``seed`` and ``key`` alone, so one metric's p-value does not depend on
    which other metrics or groups were analysed in the same call."""
    return np.random.default_rng(np.random.SeedSequence([seed, zlib.crc32(repr(key).encode())]))


@dataclass(frozen=True)
class PermutationTest:
    """A statistic of many studies with its two-sided permutation p-value and null standard error.

    Attributes:
        estimate: ``(studies,)`` the statistic.
        p_value: ``(studies,)`` two-sided; exact enumeration, or Monte Carlo with the +1 correction.
        se: ``(studies,)`` the statistic's standard deviation under the null (closed form).
        n_permutations: permutations used (all of them when ``exact``).
        exact: whether every permutation was enumerated.
    """

    estimate: np.ndarray
    p_value: np.ndarray
    se: np.ndarray
    n_permutations: int
    exact: bool


def within_run_permutations(run: np.ndarray, n_perm: int, rng: np.random.Generator) -> tuple[np.ndarray, bool]:
    """``(permutations, units)`` index arrays that move each unit's value only among its run's units.

    Every such permutation (identity included) when there are at most ``n_perm`` of them, else ``n_perm``
    uniform random ones. Returns the array and whether it is the complete enumeration.
    """
    labels, inverse = np.unique(run, return_inverse=True)
    blocks = [np.flatnonzero(inverse == r) for r in range(labels.size)]
    total = math.prod(math.factorial(b.size) for b in blocks)
    n = inverse.size
    if total <= n_perm:
        perms = np.arange(n)[None, :]
        for block in (b for b in blocks if b.size > 1):
            orders = np.array(list(itertools.permutations(block)))
            perms = np.repeat(perms, len(orders), axis=0)
            perms[:, block] = np.tile(orders, (len(perms) // len(orders), 1))
        return perms, True
    slots = np.argsort(inverse, kind="stable")  # units in run order
    keys = inverse[None, :] + rng.random((n_perm, n))  # random order inside each run's block
    perms = np.empty((n_perm, n), dtype=np.int64)
    perms[:, slots] = np.argsort(keys, axis=1)
    return perms, False


def within_run_test(
    x: np.ndarray, y: np.ndarray, group: np.ndarray, run: np.ndarray, *, n_perm: int, rng: np.random.Generator
) -> PermutationTest:
    """The within-group ρ(x, y) of each study and its within-run permutation test.

    The statistic splits into a between-run part (constant under within-run permutation) and a
    within-run part; the p-value is that of the within-run part, ``P(|W*| ≥ |W|)``.

    Args:
        x: ``(studies, units)`` pretraining loss of pretrained units.
        y: ``(studies, units)`` the metric.
        group: ``(units,)`` group of each unit.
        run: ``(units,)`` pretraining run of each unit (runs nest in groups).
        n_perm: enumerate when there are at most this many permutations, else draw this many.
        rng: draws the permutations (the same draws serve every study).
    """
    x, y = np.atleast_2d(np.asarray(x, dtype=float)), np.atleast_2d(np.asarray(y, dtype=float))
    rho = within_group_rho(x, y, group)
    coef, yrank = rho.coef, rho.yrank
    _, inverse = np.unique(run, return_inverse=True)
    size = np.bincount(inverse)[inverse]
    coef_run = _run_means(coef, inverse)  # (studies, units) each unit's run mean
    yrank_run = _run_means(yrank, inverse)
    between = (coef * yrank_run).sum(axis=1)  # the part no within-run permutation changes
    observed = rho.estimate - between
    perms, exact = within_run_permutations(run, n_perm, rng)
    exceed = np.zeros(x.shape[0])
    step = max(1, CHUNK // max(1, perms.size))
    for lo in range(0, x.shape[0], step):
        part = slice(lo, lo + step)
        moved = np.einsum("su,spu->sp", coef[part], yrank[part][:, perms]) - between[part, None]
        exceed[part] = (np.abs(moved) >= np.abs(observed[part, None]) - _tol(observed[part, None])).sum(axis=1)
    p = exceed / len(perms) if exact else (exceed + 1) / (len(perms) + 1)
    # Closed-form null variance: a uniform permutation of k values in a run gives Var = S_cc · S_yy / (k − 1);
    # exchanging runs within a group gives the same form over run totals.
    dc, dy = coef - coef_run, yrank - yrank_run
    within_var = np.zeros(x.shape[0])
    for r in range(inverse.max() + 1 if inverse.size else 0):
        idx = np.flatnonzero(inverse == r)
        if idx.size > 1:
            within_var += (dc[:, idx] ** 2).sum(axis=1) * (dy[:, idx] ** 2).sum(axis=1) / (idx.size - 1)
    var = within_var + _between_var(coef_run * size, yrank_run, group, inverse)
    p = np.where(np.isfinite(rho.estimate), p, np.nan)
    return PermutationTest(rho.estimate, p, np.sqrt(var), len(perms), exact)


def _run_means(values: np.ndarray, inverse: np.ndarray) -> np.ndarray:
    sums = np.zeros((values.shape[0], inverse.max() + 1 if inverse.size else 0))
    np.add.at(sums.T, inverse, values.T)
    return (sums / np.bincount(inverse))[:, inverse]


def _between_var(total_c: np.ndarray, mean_y: np.ndarray, group: np.ndarray, inverse: np.ndarray) -> np.ndarray:
    """Permutation variance of ``Σ_runs total_c · mean_y`` when runs are exchanged within their group."""
    var = np.zeros(total_c.shape[0])
    for label in np.unique(group):
        _, first = np.unique(np.where(group == label, inverse, -1), return_index=True)
        first = first[group[first] == label]  # one unit per run of this group
        if first.size < 2:
            continue
        a, b = total_c[:, first], mean_y[:, first]
        a, b = a - a.mean(axis=1, keepdims=True), b - b.mean(axis=1, keepdims=True)
        var += (a * a).sum(axis=1) * (b * b).sum(axis=1) / (first.size - 1)
    return var


def sign_flip_test(diffs: np.ndarray, weights: np.ndarray, *, n_perm: int, rng: np.random.Generator) -> PermutationTest:
    """The weighted mean ``Σ_r weights[r] · diffs[:, r]`` of paired per-run differences, tested by flipping signs.

    Under "no difference" each run's difference is symmetric about zero, so every sign pattern is equally
    likely: all ``2^runs`` are enumerated when there are at most ``n_perm``, else ``n_perm`` are drawn.
    """
    d = np.atleast_2d(np.asarray(diffs, dtype=float))
    w = np.asarray(weights, dtype=float)
    runs = w.size
    exact = 2**runs <= n_perm
    if exact:
        signs = 1 - 2 * ((np.arange(2**runs)[:, None] >> np.arange(runs)) & 1)
    else:
        signs = rng.choice(np.array([-1.0, 1.0]), size=(n_perm, runs))
    estimate = d @ w
    flipped = (d * w) @ signs.T.astype(float)
    exceed = (np.abs(flipped) >= np.abs(estimate[:, None]) - _tol(estimate[:, None])).sum(axis=1)
    p = exceed / len(signs) if exact else (exceed + 1) / (len(signs) + 1)
    se = np.sqrt(((d * w) ** 2).sum(axis=1))
    return PermutationTest(estimate, p, se, len(signs), exact)


def normal_interval(
    estimate: np.ndarray, se: np.ndarray, ci: float, *, bounds: tuple[float, float] = (-np.inf, np.inf)
) -> tuple[np.ndarray, np.ndarray]:
    """``estimate ± z · se`` clipped to ``bounds``; NaN where either is undefined."""
    z = NormalDist().inv_cdf(0.5 + ci / 2)
    low = np.clip(estimate - z * se, *bounds)
    high = np.clip(estimate + z * se, *bounds)
    undefined = ~(np.isfinite(estimate) & np.isfinite(se))
    return np.where(undefined, np.nan, low), np.where(undefined, np.nan, high)


def _tol(values: np.ndarray) -> np.ndarray:
    """Float slack so a permutation that reproduces the observed statistic counts as at least as extreme."""
    return 1e-9 * np.maximum(1.0, np.abs(values))
