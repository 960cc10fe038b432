"""Calibration and power: whole studies of a given design, simulated and run through the study's own tests.

A simulated study has ``n_groups`` groups of ``runs_per_group`` pretraining runs, each measured at the
pretrained checkpoint ``steps``. A unit's pretraining loss is the step's typical loss times run-level and
checkpoint-level jitter; each metric is ``slope · loss + run effect + noise`` with the run effect's
standard deviation ``run_sd`` (the noise has standard deviation 1). The first primary metric carries the
planted effect, the others none, so Holm corrects over the full family as in the study.

The planted effect is stated as the within-group Spearman ρ it produces in this design: the slope is
found by bisection so that the mean within-group ρ over ``CALIBRATION_STUDIES`` simulated studies
(common random numbers) equals ``rho``. "ρ = 0.5" therefore means the estimate the study prints averages
0.5 for that design, and an interval covers the truth when it contains that value.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from modlens.analysis.correlation import N_PERM
from modlens.analysis.frame import CONTROL_STEP, group_columns, run_ids, unit_values
from modlens.analysis.permutation import normal_interval, within_run_test
from modlens.analysis.primary import ALPHA, MAX_PRIMARY, holm
from modlens.analysis.ranks import MIN_UNITS, within_group_rho
from modlens.analysis.synthetic import TRAJECTORY_LOSS
from modlens.errors import ConfigError

CALIBRATION_STUDIES = 2000
POWER_TARGET = 0.8  # a design with less power than this at ρ = 0.5 is called underpowered
MODERATE_RHO = 0.5


@dataclass(frozen=True)
class Design:
    """The shape of a study: groups × pretraining runs per group × pretrained checkpoint steps.

    Attributes:
        n_groups: depth/corpus/noise groups.
        runs_per_group: pretraining runs (seeds) per group.
        steps: pretrained checkpoint steps (> 0; random init is the control, not part of the test).
        losses: typical held-out loss per step (default: interpolated from a typical trajectory).
    """

    n_groups: int
    runs_per_group: int
    steps: tuple[int, ...]
    losses: tuple[float, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.n_groups < 1 or self.runs_per_group < 1 or not self.steps or min(self.steps) <= CONTROL_STEP:
            raise ConfigError(f"a design needs groups, runs and pretrained steps > 0, got {self}")
        if self.losses and len(self.losses) != len(self.steps):
            raise ConfigError(f"one loss per step: {len(self.steps)} steps, {len(self.losses)} losses")

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> "Design":
        """The design of a study frame: its groups, the fewest runs in a group, its pretrained steps and losses."""
        units = unit_values(frame)
        units = units[units["step"] != CONTROL_STEP]
        if units.empty:
            raise ConfigError("the study frame has no pretrained units, so it has no design to calibrate")
        groups = group_columns(units)
        runs = run_ids(units, groups)
        per_group = units.assign(run=runs).groupby(groups)["run"].nunique() if groups else [runs.nunique()]
        losses = units.groupby("step")["pretrain_loss"].mean()
        steps = tuple(int(s) for s in losses.index)
        return cls(len(per_group), int(np.min(per_group)), steps, tuple(float(v) for v in losses))

    @property
    def label(self) -> str:
        """E.g. ``8 groups × 3 runs × steps 300/1000``."""
        groups = f"{self.n_groups} group{'' if self.n_groups == 1 else 's'}"
        runs = f"{self.runs_per_group} run{'' if self.runs_per_group == 1 else 's'}"
        return f"{groups} × {runs} × step{'' if len(self.steps) == 1 else 's'} {'/'.join(map(str, self.steps))}"

    def typical_losses(self) -> np.ndarray:
        """Held-out loss per step: given, else log-log interpolation of the typical trajectory."""
        if self.losses:
            return np.asarray(self.losses, dtype=float)
        known = sorted((s, v) for s, v in TRAJECTORY_LOSS.items() if s > CONTROL_STEP)
        log_s, log_v = np.log([s for s, _ in known]), np.log([v for _, v in known])
        at = np.log(np.asarray(self.steps, dtype=float))
        slope = (log_v[1] - log_v[0]) / (log_s[1] - log_s[0])  # extrapolate below the first known step
        inside = np.interp(at, log_s, log_v)
        return np.exp(np.where(at < log_s[0], log_v[0] + slope * (at - log_s[0]), inside))


def testable(design: Design) -> bool:
    """Whether the within-run test can reject at all: two or more pretrained checkpoints per run, and
    enough units per group for a rank correlation."""
    return len(design.steps) >= 2 and design.runs_per_group * len(design.steps) >= MIN_UNITS


@dataclass(frozen=True)
class Layout:
    """Unit ``i`` of every simulated study: its group, run and step index (units sorted by group, run, step)."""

    group: np.ndarray
    run: np.ndarray
    step: np.ndarray


def layout(design: Design) -> Layout:
    """The unit layout of ``design``."""
    g, r, s = np.meshgrid(
        np.arange(design.n_groups), np.arange(design.runs_per_group), np.arange(len(design.steps)), indexing="ij"
    )
    return Layout(group=g.ravel(), run=(g * design.runs_per_group + r).ravel(), step=s.ravel())


def simulate_losses(
    design: Design, n_studies: int, rng: np.random.Generator, *, run_jitter: float = 0.05, jitter: float = 0.02
) -> np.ndarray:
    """``(studies, units)`` pretraining losses: typical loss × (1 + run-level + checkpoint-level jitter)."""
    where = layout(design)
    n_runs = design.n_groups * design.runs_per_group
    run_z = rng.standard_normal((n_studies, n_runs))[:, where.run]
    unit_z = rng.standard_normal((n_studies, where.run.size))
    return design.typical_losses()[where.step] * (1 + run_jitter * run_z + jitter * unit_z)


def simulate_noise(design: Design, n_studies: int, rng: np.random.Generator, *, run_sd: float = 1.0) -> np.ndarray:
    """``(studies, units)`` metric noise: a run effect (standard deviation ``run_sd``) plus unit noise (1)."""
    where = layout(design)
    n_runs = design.n_groups * design.runs_per_group
    return run_sd * rng.standard_normal((n_studies, n_runs))[:, where.run] + rng.standard_normal(
        (n_studies, where.run.size)
    )


def calibrate_slope(design: Design, rho: float, *, run_sd: float = 1.0, seed: int = 0) -> float:
    """The slope of metric on loss whose mean within-group Spearman ρ in ``design`` is ``rho``."""
    if rho == 0:
        return 0.0
    rng = np.random.default_rng(seed)
    losses = simulate_losses(design, CALIBRATION_STUDIES, rng)
    noise = simulate_noise(design, CALIBRATION_STUDIES, rng, run_sd=run_sd)
    group = layout(design).group

    def mean_rho(slope: float) -> float:
        return float(np.nanmean(within_group_rho(losses, slope * losses + noise, group).estimate))

    target, high = abs(rho), 1.0
    while mean_rho(high) < target:
        high *= 2
        if high > 1e9:
            raise ConfigError(f"no slope reaches a mean within-group ρ of {target} in {design.label}")
    low = 0.0
    for _ in range(50):
        mid = (low + high) / 2
        low, high = (mid, high) if mean_rho(mid) < target else (low, mid)
    return float(np.sign(rho) * (low + high) / 2)


@dataclass(frozen=True)
class Calibration:
    """How often simulated studies of one design reach each verdict.

    Attributes:
        design: the design simulated.
        rho: the planted within-group ρ of the first primary metric (the others have none).
        slope: the slope that plants it.
        n_studies: studies simulated.
        established: per primary metric, the fraction of studies with a verdict "established" (for the
            planted metric, in the planted direction): power for it, false-positive rate for the others.
        coverage: per primary metric, the fraction of printed intervals that contain the true ρ.
        mean_estimate: per primary metric, the mean within-group ρ over studies.
        any_established: the fraction of studies with at least one null primary metric established (the
            family-wise false-positive rate; with ``rho`` 0, over all of them).
    """

    design: Design
    rho: float
    slope: float
    n_studies: int
    established: tuple[float, ...]
    coverage: tuple[float, ...]
    mean_estimate: tuple[float, ...]
    any_established: float

    @property
    def power(self) -> float:
        """The planted metric's rate of "established" (its false-positive rate when ``rho`` is 0)."""
        return self.established[0]


def calibrate(
    design: Design,
    *,
    rho: float = 0.0,
    n_studies: int = 400,
    n_primary: int = MAX_PRIMARY,
    n_perm: int = N_PERM,
    alpha: float = ALPHA,
    ci: float = 0.95,
    run_sd: float = 1.0,
    seed: int = 0,
) -> Calibration:
    """Simulates ``n_studies`` studies of ``design`` and runs them through the study's tests and Holm.

    Args:
        design: the study shape.
        rho: the planted within-group ρ(loss, metric) of the first primary metric (0: every metric null).
        n_studies: simulated studies.
        n_primary: primary metrics (Holm family size).
        n_perm: permutations per test (the same Monte Carlo or exact test the study runs).
        alpha: family-wise level.
        ci: coverage of the printed interval.
        run_sd: standard deviation of the run effect relative to the unit noise.
        seed: seed of everything simulated.
    """
    if n_studies < 1 or not 1 <= n_primary <= MAX_PRIMARY:
        raise ConfigError(f"need n_studies ≥ 1 and 1 to {MAX_PRIMARY} primary metrics")
    if not testable(design):  # no permutation can move a value, or no group has a rank correlation
        nan = (float("nan"),) * n_primary
        return Calibration(design, rho, float("nan"), n_studies, (0.0,) * n_primary, nan, nan, 0.0)
    slope = calibrate_slope(design, rho, run_sd=run_sd, seed=seed + 1)
    rng = np.random.default_rng(seed)
    where = layout(design)
    losses = simulate_losses(design, n_studies, rng)
    p_values, estimates, covered = [], [], []
    for k in range(n_primary):
        truth, k_slope = (rho, slope) if k == 0 else (0.0, 0.0)
        values = k_slope * losses + simulate_noise(design, n_studies, rng, run_sd=run_sd)
        test = within_run_test(losses, values, where.group, where.run, n_perm=n_perm, rng=rng)
        low, high = normal_interval(test.estimate, test.se, ci, bounds=(-1.0, 1.0))
        p_values.append(test.p_value)
        estimates.append(test.estimate)
        covered.append(float(np.mean((low <= truth) & (truth <= high))))
    adjusted = holm(np.stack(p_values, axis=1))
    signs = np.sign(np.stack(estimates, axis=1))
    hits = adjusted < alpha
    hits[:, 0] &= (signs[:, 0] == np.sign(rho)) | (rho == 0)
    return Calibration(
        design=design,
        rho=rho,
        slope=slope,
        n_studies=n_studies,
        established=tuple(float(v) for v in hits.mean(axis=0)),
        coverage=tuple(covered),
        mean_estimate=tuple(float(np.nanmean(e)) for e in estimates),
        any_established=float(hits[:, 0 if rho == 0 else 1 :].any(axis=1).mean()),
    )


def power(
    design: Design,
    rho: float = MODERATE_RHO,
    *,
    n_studies: int = 400,
    n_perm: int = N_PERM,
    run_sd: float = 1.0,
    seed: int = 0,
) -> float:
    """The chance that a study of ``design`` establishes a primary metric with within-group ρ = ``rho``
    (two further primary metrics null, Holm over all three). Arguments as in ``calibrate``."""
    return calibrate(design, rho=rho, n_studies=n_studies, n_perm=n_perm, run_sd=run_sd, seed=seed).power


def underpowered(design: Design, *, n_studies: int = 400, seed: int = 0) -> bool:
    """Whether ``design`` has power below ``POWER_TARGET`` for a moderate effect (ρ = 0.5)."""
    return power(design, MODERATE_RHO, n_studies=n_studies, seed=seed) < POWER_TARGET


def calibration_table(
    designs: Mapping[str, Design],
    *,
    rho: float = MODERATE_RHO,
    n_studies: int = 400,
    n_perm: int = N_PERM,
    run_sd: float = 1.0,
    seed: int = 0,
) -> pd.DataFrame:
    """One row per design: the worst primary metric's null false-positive rate and null coverage of the
    printed interval, and power and coverage of the true ρ at ``rho``. Arguments as in ``calibrate``."""
    rows = []
    for name, design in designs.items():
        null, effect = (
            calibrate(design, rho=r, n_studies=n_studies, n_perm=n_perm, run_sd=run_sd, seed=seed) for r in (0.0, rho)
        )
        rows.append(
            {
                "design": name,
                "shape": design.label,
                "false_positive_rate": max(null.established),
                "familywise_rate": null.any_established,
                "null_coverage": min(null.coverage),
                "power": effect.power,
                "coverage_at_rho": effect.coverage[0],
                "slope": effect.slope,
            }
        )
    return pd.DataFrame(rows)
