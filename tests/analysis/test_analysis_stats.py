"""Bootstrap summaries, rank correlations and the random-init control on frames with known answers."""

import numpy as np
import pandas as pd
import pytest

from modlens.analysis import (
    METRICS_INFO,
    metric_info,
    random_init_control,
    rank_correlations,
    spearman,
    summarize_levels,
    synthetic_study_frame,
    unit_values,
    weighted_spearman,
)
from modlens.errors import ModlensError

N_BOOT = 400


def _reference_spearman(x, y) -> float:
    """Pearson correlation of average ranks (the definition; scipy is not a dependency)."""
    return float(np.corrcoef(pd.Series(x).rank(), pd.Series(y).rank())[0, 1])


def test_registry_directions():
    assert all(info.direction in (-1, 0, 1) for info in METRICS_INFO.values())
    assert metric_info("mask_iou").direction == -1
    assert metric_info("heldout_composite_accuracy").direction == 1
    assert metric_info("something_new") == ("something_new", 0)


@pytest.mark.parametrize("seed", range(5))
def test_spearman_matches_pandas_with_ties(seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 4, 12).astype(float)
    y = rng.integers(0, 3, 12).astype(float)
    expected = _reference_spearman(x, y)
    assert spearman(x, y) == pytest.approx(expected)


def test_weighted_spearman_equals_expanded_sample():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=6), rng.normal(size=6)
    x[1] = x[0]  # a tie
    weights = np.array([[2, 0, 1, 3, 1, 0], [1, 1, 1, 1, 1, 1]], dtype=float)
    for w, got in zip(weights, weighted_spearman(x, y, weights), strict=True):
        expanded = np.repeat(np.arange(6), w.astype(int))
        assert got == pytest.approx(_reference_spearman(x[expanded], y[expanded]))


def test_constant_gives_nan():
    assert np.isnan(spearman(np.array([1.0, 2.0, 3.0]), np.array([5.0, 5.0, 5.0])))


def test_units_average_subroutines():
    frame = synthetic_study_frame({"mask_iou": (2.0, 0.0)}, subroutines=("a", "b"), seeds=(0,))
    frame.loc[frame["subroutine"] == "b", "value"] += 1.0
    units = unit_values(frame)
    assert len(units) == len(frame) / 2
    merged = units.merge(frame[frame["subroutine"] == "a"][["unit", "value"]], on="unit", suffixes=("", "_a"))
    np.testing.assert_allclose(merged["value"], merged["value_a"] + 0.5)


def test_missing_columns_is_a_user_error():
    with pytest.raises(ModlensError, match="pretrain_loss"):
        unit_values(pd.DataFrame({"step": [0], "seed": [0], "metric": ["x"], "value": [1.0]}))


def test_level_summary_hand_computed():
    frame = pd.DataFrame(
        {
            "depth": 2,
            "corpus": "primitives",
            "label_noise": 0.0,
            "step": 100,
            "seed": [0, 1, 2, 0, 1, 2],
            "pretrain_loss": [1.0, 1.2, 1.4, 1.0, 1.2, 1.4],
            "metric": "mask_iou",
            "subroutine": ["a", "a", "a", "b", "b", "b"],
            "value": [0.1, 0.2, 0.3, 0.3, 0.4, 0.5],
        }
    )
    row = summarize_levels(frame, n_boot=N_BOOT).iloc[0]
    assert row["n_seeds"] == 3
    assert row["mean"] == pytest.approx(0.3)  # seeds 0.2, 0.3, 0.4
    assert row["pretrain_loss"] == pytest.approx(1.2)
    assert 0.2 - 1e-9 <= row["ci_low"] < 0.3 < row["ci_high"] <= 0.4 + 1e-9
    again = summarize_levels(frame, n_boot=N_BOOT).iloc[0]
    assert (row["ci_low"], row["ci_high"]) == (again["ci_low"], again["ci_high"])  # seeded


def test_one_seed_has_no_interval():
    frame = synthetic_study_frame({"mask_iou": (2.0, 0.01)}, seeds=(0,))
    summary = summarize_levels(frame, n_boot=N_BOOT)
    assert (summary["n_seeds"] == 1).all() and summary["ci_low"].isna().all()
    corr = rank_correlations(frame, n_boot=N_BOOT).iloc[0]
    assert corr["note"] == "one seed" and np.isfinite(corr["rho"]) and np.isnan(corr["ci_low"])
    ctrl = random_init_control(frame, n_boot=N_BOOT).iloc[0]
    assert ctrl["note"] == "one seed" and np.isnan(ctrl["ci_low"]) and np.isfinite(ctrl["difference"])


def test_linear_metric_correlation_excludes_zero():
    frame = synthetic_study_frame({"mask_iou": (2.0, 0.01)}, depths=(2, 3))
    corr = rank_correlations(frame, n_boot=N_BOOT)
    assert list(corr["scope"]) == [
        "pooled",
        "depth=2, corpus=primitives, label_noise=0.0",
        "depth=3, corpus=primitives, label_noise=0.0",
    ]
    for _, row in corr.iterrows():
        assert row["rho"] > 0.95 and row["ci_low"] > 0 and row["excludes_zero"]
        assert row["better_pretraining"] == "lower" and row["n_seeds"] == 5
    assert corr.iloc[0]["n_units"] == 2 * 5 * 3  # pretrained units only: step 0 is the control


def test_random_init_included_on_request():
    frame = synthetic_study_frame({"mask_iou": (2.0, 0.01)})
    corr = rank_correlations(frame, n_boot=N_BOOT, include_random_init=True)
    assert corr.iloc[0]["n_units"] == 5 * 4


def test_noise_is_inconclusive():
    frame = synthetic_study_frame({"heldout_composite_accuracy": (0.0, 1.0)}, seed=3)
    row = rank_correlations(frame, n_boot=N_BOOT).iloc[0]
    assert row["ci_low"] < 0 < row["ci_high"] and not row["excludes_zero"]


def test_constant_metric_is_undefined():
    frame = synthetic_study_frame({"finetune_steps": (0.0, 0.0)})
    row = rank_correlations(frame, n_boot=N_BOOT).iloc[0]
    assert row["note"] == "constant" and np.isnan(row["rho"])


def test_control_difference():
    frame = synthetic_study_frame({"mask_iou": (2.0, 0.0)}, loss_jitter=0.0)
    ctrl = random_init_control(frame, n_boot=N_BOOT)
    pooled = ctrl[ctrl["scope"] == "pooled"].iloc[0]
    # best level: step 3000 (loss 0.4) vs step 0 (loss 3.0): 2 · (0.4 − 3.0)
    assert pooled["best_step"] == 3000
    assert pooled["difference"] == pytest.approx(2 * (0.4 - 3.0))
    assert pooled["ci_low"] == pytest.approx(pooled["difference"]) and pooled["excludes_zero"]


def test_control_pooled_is_mean_of_groups():
    frame = synthetic_study_frame({"mask_iou": (2.0, 0.05)}, depths=(2, 3), corpora=("primitives", "mixed"))
    ctrl = random_init_control(frame, n_boot=N_BOOT)
    groups = ctrl[ctrl["scope"] != "pooled"]
    pooled = ctrl[ctrl["scope"] == "pooled"].iloc[0]
    assert len(groups) == 4 and pooled["n_groups"] == 4
    assert pooled["difference"] == pytest.approx(groups["difference"].mean())
    assert pooled["ci_low"] < pooled["difference"] < pooled["ci_high"]


def test_control_without_step_zero():
    frame = synthetic_study_frame({"mask_iou": (2.0, 0.01)}, steps={300: 1.5, 3000: 0.4})
    ctrl = random_init_control(frame, n_boot=N_BOOT)
    assert ctrl.iloc[1]["note"] == "no random init" and np.isnan(ctrl.iloc[0]["difference"])
