"""Whole simulated studies through the study's own tests: the verdicts hold their level; power is real."""

import numpy as np
import pytest

from modlens.analysis import Design, calibrate, calibration_table, power, synthetic_study_frame, underpowered
from modlens.analysis.calibration import calibrate_slope, layout, simulate_losses, simulate_noise
from modlens.analysis.ranks import within_group_rho
from modlens.errors import ConfigError

N_STUDIES = 240
QUICK = Design(1, 3, (300, 1000))
FULL = Design(8, 3, (300, 1000))


@pytest.mark.parametrize("design", [QUICK, FULL], ids=["quick", "full"])
def test_null_false_positive_rate_per_primary_metric(design):
    result = calibrate(design, rho=0.0, n_studies=N_STUDIES, n_primary=3, seed=11)
    assert len(result.established) == 3
    assert all(rate <= 0.07 for rate in result.established), result.established
    assert result.any_established <= 0.08  # Holm: any of the three, at most about 0.05
    assert all(cov >= 0.9 for cov in result.coverage), result.coverage  # the printed interval, under the null
    assert abs(np.mean(result.mean_estimate)) < 0.05


def test_planted_effect_has_power_above_null_rate():
    null = calibrate(FULL, rho=0.0, n_studies=N_STUDIES, seed=3)
    effect = calibrate(FULL, rho=0.5, n_studies=N_STUDIES, seed=3)
    assert effect.power > max(null.established) + 0.3
    assert effect.established[1] <= 0.07 and effect.established[2] <= 0.07  # the other primaries stay null
    assert effect.mean_estimate[0] == pytest.approx(0.5, abs=0.05)


def test_quick_shape_cannot_establish_anything():
    # 3 runs × 2 checkpoints: 2³ within-run permutations, so no p-value is below 2/8.
    assert calibrate(QUICK, rho=0.8, n_studies=50, n_primary=1).power == 0
    assert underpowered(QUICK, n_studies=50)


def test_untestable_design_has_no_power():
    one_step = Design(2, 3, (1000,))  # nothing to permute within a run
    result = calibrate(one_step, rho=0.5, n_studies=20)
    assert result.established == (0.0, 0.0, 0.0) and np.isnan(result.slope)
    assert power(Design(1, 1, (300, 1000)), n_studies=20) == 0.0  # two units: no rank correlation


def test_slope_plants_the_stated_within_group_rho():
    slope = calibrate_slope(FULL, 0.5)
    rng = np.random.default_rng(99)  # fresh studies, not the calibration draw
    losses = simulate_losses(FULL, 3000, rng)
    values = slope * losses + simulate_noise(FULL, 3000, rng)
    assert np.mean(within_group_rho(losses, values, layout(FULL).group).estimate) == pytest.approx(0.5, abs=0.02)
    assert calibrate_slope(FULL, -0.5) == pytest.approx(-slope)
    assert calibrate_slope(FULL, 0.0) == 0.0


def test_design_from_frame_and_label():
    frame = synthetic_study_frame({"x": (1.0, 0.1)}, depths=(2, 3), seeds=(0, 1, 2, 3))
    frame = frame[~((frame["depth"] == 3) & (frame["seed"] == 3))]  # one group has a run fewer
    design = Design.from_frame(frame)
    assert (design.n_groups, design.runs_per_group, design.steps) == (2, 3, (300, 1000, 3000))
    assert design.label == "2 groups × 3 runs × steps 300/1000/3000"
    np.testing.assert_allclose(design.typical_losses(), frame.groupby("step")["pretrain_loss"].mean()[1:], rtol=1e-9)
    np.testing.assert_allclose(Design(1, 3, (300, 1000)).typical_losses(), [1.5, 0.8])
    assert Design(1, 3, (100,)).typical_losses()[0] > 1.5  # extrapolated: worse than step 300
    with pytest.raises(ConfigError):
        Design(1, 3, (0, 300))


def test_power_and_table():
    assert 0 <= power(Design(2, 4, (300, 1000)), 0.5, n_studies=50) <= 1
    table = calibration_table({"small": Design(2, 3, (300, 1000))}, n_studies=50)
    assert list(table.columns) == [
        "design",
        "shape",
        "false_positive_rate",
        "familywise_rate",
        "null_coverage",
        "power",
        "coverage_at_rho",
        "slope",
    ]
