"""Frame-level analysis: registry, units, exclusions, within-group correlations, the control and level summaries."""

import numpy as np
import pandas as pd
import pytest

from modlens.analysis import (
    METRICS_INFO,
    WITHIN,
    excluded_units,
    metric_info,
    random_init_control,
    rank_correlations,
    summarize_levels,
    synthetic_study_frame,
    unit_values,
    within_run_test,
)
from modlens.analysis.levels import t_quantile
from modlens.errors import ConfigError, ModlensError

N_PERM = 199


def test_registry_directions():
    assert all(info.direction in (-1, 0, 1) for info in METRICS_INFO.values())
    assert metric_info("mask_iou_excess").direction == -1
    assert metric_info("reuse_specificity").direction == 1
    assert metric_info("mask_rejection_rate").direction == 0
    assert "weight_drift_mean_depth" not in METRICS_INFO and "cka_drift_mean_depth" not in METRICS_INFO
    assert metric_info("something_new") == ("something_new", 0)
    fixed = metric_info("weight_drift_upper_share_fixed_budget")
    assert fixed.direction == 1 and fixed.label.endswith("fixed budget")


def test_units_average_subroutines():
    frame = synthetic_study_frame({"mask_iou_excess": (2.0, 0.0)}, subroutines=("a", "b"), seeds=(0,))
    frame.loc[frame["subroutine"] == "b", "value"] += 1.0
    units = unit_values(frame)
    assert len(units) == len(frame) / 2
    merged = units.merge(frame[frame["subroutine"] == "a"][["unit", "value"]], on="unit", suffixes=("", "_a"))
    np.testing.assert_allclose(merged["value"], merged["value_a"] + 0.5)


def test_missing_columns_is_a_user_error():
    with pytest.raises(ModlensError, match="pretrain_loss"):
        unit_values(pd.DataFrame({"step": [0], "seed": [0], "metric": ["x"], "value": [1.0]}))


def test_nan_rows_are_dropped_and_counted():
    frame = synthetic_study_frame({"reuse_specificity": (-1.0, 0.05)}, seeds=(0, 1, 2), subroutines=("a", "b"))
    # Unit seed 0 / step 300: both subroutines NaN (excluded). Seed 1 / step 1000: one NaN (kept, other averaged).
    gone = (frame["seed"] == 0) & (frame["step"] == 300)
    half = (frame["seed"] == 1) & (frame["step"] == 1000) & (frame["subroutine"] == "a")
    frame.loc[gone | half, "value"] = np.nan
    counts = excluded_units(frame).set_index("metric").loc["reuse_specificity"]
    assert counts["n_excluded"] == 1 and counts["n_excluded_pretrained"] == 1
    units = unit_values(frame)
    assert len(units) == 3 * 4 - 1 and units["value"].notna().all()
    kept = frame[(frame["seed"] == 1) & (frame["step"] == 1000) & (frame["subroutine"] == "b")]["value"]
    assert units[(units["seed"] == 1) & (units["step"] == 1000)]["value"].iloc[0] == pytest.approx(kept.iloc[0])
    row = rank_correlations(frame, n_perm=N_PERM).iloc[0]
    assert row["n_units"] == 3 * 3 - 1 and row["n_excluded"] == 1  # pretrained units: steps 300, 1000, 3000


def test_headline_row_is_within_group_rho_and_frame_matches_arrays():
    frame = synthetic_study_frame({"mask_iou_excess": (0.3, 0.2)}, depths=(2, 3), seeds=(0, 1, 2), run_sd=0.3)
    corr = rank_correlations(frame, n_perm=N_PERM, seed=4)
    assert list(corr["scope"]) == [
        WITHIN,
        "depth=2, corpus=primitives, label_noise=0.0",
        "depth=3, corpus=primitives, label_noise=0.0",
    ]
    head, groups = corr.iloc[0], corr.iloc[1:]
    assert head["n_units"] == 2 * 3 * 3 and head["n_runs"] == 6 and head["n_groups"] == 2
    assert head["rho"] == pytest.approx(groups["rho"].mean())  # equal group sizes: plain mean
    pretrained = unit_values(frame).query("step != 0").sort_values(["depth", "seed", "step"])
    test = within_run_test(
        pretrained["pretrain_loss"].to_numpy(),
        pretrained["value"].to_numpy(),
        pretrained["depth"].to_numpy(),
        (pretrained["depth"] * 100 + pretrained["seed"]).to_numpy(),
        n_perm=10_000,
        rng=np.random.default_rng(0),
    )
    assert head["rho"] == pytest.approx(test.estimate[0]) and head["se"] == pytest.approx(test.se[0])
    assert head["ci_low"] <= head["rho"] <= head["ci_high"] and 0 < head["p_value"] <= 1
    assert np.isfinite(head["pooled_rho"]) and groups["pooled_rho"].isna().all()


def test_strong_trend_is_significant_and_noise_is_not():
    frame = synthetic_study_frame(
        {"mask_iou_excess": (2.0, 0.01), "heldout_composite_accuracy": (0.0, 1.0)}, seeds=range(8), run_sd=1.0, seed=1
    )
    corr = rank_correlations(frame, n_perm=N_PERM).query("scope == @WITHIN").set_index("metric")
    strong, noise = corr.loc["mask_iou_excess"], corr.loc["heldout_composite_accuracy"]
    assert strong["rho"] > 0.6 and strong["p_value"] < 0.01 and strong["better_pretraining"] == "lower"
    assert noise["p_value"] > 0.05 and noise["ci_low"] < 0 < noise["ci_high"]


def test_undefined_correlations_say_why():
    frame = synthetic_study_frame({"finetune_steps": (0.0, 0.0)}, seeds=(0, 1, 2))
    assert rank_correlations(frame, n_perm=N_PERM).iloc[0]["note"] == "constant"
    frame = synthetic_study_frame({"x": (1.0, 0.1)}, seeds=(0, 1, 2), steps={0: 3.0, 1000: 0.8})
    row = rank_correlations(frame, n_perm=N_PERM).iloc[0]
    assert row["note"] == "one checkpoint per run" and np.isfinite(row["rho"]) and np.isnan(row["p_value"])
    frame = synthetic_study_frame({"x": (1.0, 0.1)}, seeds=(0,), steps={0: 3.0, 1000: 0.8})
    assert rank_correlations(frame, n_perm=N_PERM).iloc[0]["note"] == "too few units"
    frame.loc[frame["step"] != 0, "value"] = np.nan
    assert rank_correlations(frame, n_perm=N_PERM).iloc[0]["note"] == "no values"


def test_bad_test_settings_are_config_errors():
    frame = synthetic_study_frame({"x": (1.0, 0.1)}, seeds=(0, 1))
    with pytest.raises(ConfigError, match="n_perm"):
        rank_correlations(frame, n_perm=0)
    with pytest.raises(ConfigError, match="ci"):
        random_init_control(frame, ci=1.5)


def test_control_difference_paired_within_run():
    frame = synthetic_study_frame({"mask_iou_excess": (2.0, 0.0)}, loss_jitter=0.0, seeds=(0, 1, 2, 3))
    head = random_init_control(frame, n_perm=N_PERM).iloc[0]
    # best level: step 3000 (loss 0.4) vs step 0 (loss 3.0): 2 · (0.4 − 3.0) in every run
    assert head["scope"] == WITHIN and head["best_step"] == 3000 and head["n_runs"] == 4
    assert head["difference"] == pytest.approx(2 * (0.4 - 3.0))
    assert head["p_value"] == pytest.approx(2 / 16)  # exact sign flip: all-negative and all-positive of 16
    assert head["ci_high"] < 0


def test_control_pooled_is_mean_of_groups():
    frame = synthetic_study_frame({"mask_iou_excess": (2.0, 0.05)}, depths=(2, 3), corpora=("primitives", "mixed"))
    ctrl = random_init_control(frame, n_perm=N_PERM)
    groups = ctrl[ctrl["scope"] != WITHIN]
    head = ctrl[ctrl["scope"] == WITHIN].iloc[0]
    assert len(groups) == 4 and head["n_groups"] == 4 and head["n_runs"] == 20
    assert head["difference"] == pytest.approx(groups["difference"].mean())
    assert head["ci_low"] < head["difference"] < head["ci_high"]


def test_control_without_step_zero():
    frame = synthetic_study_frame({"mask_iou_excess": (2.0, 0.01)}, steps={300: 1.5, 3000: 0.4})
    ctrl = random_init_control(frame, n_perm=N_PERM)
    assert ctrl.iloc[1]["note"] == "no random init" and np.isnan(ctrl.iloc[0]["difference"])


def test_t_quantiles():
    assert t_quantile(0.975, 2) == pytest.approx(4.302653, abs=1e-4)
    assert t_quantile(0.975, 1) == pytest.approx(12.7062, abs=1e-3)
    assert t_quantile(0.975, 1000) == pytest.approx(1.962339, abs=1e-4)


def test_level_summary_hand_computed():
    frame = pd.DataFrame(
        {
            "depth": 2,
            "corpus": "primitives",
            "label_noise": 0.0,
            "step": 100,
            "seed": [0, 1, 2, 0, 1, 2],
            "pretrain_loss": [1.0, 1.2, 1.4, 1.0, 1.2, 1.4],
            "metric": "mask_iou_excess",
            "subroutine": ["a", "a", "a", "b", "b", "b"],
            "value": [0.1, 0.2, 0.3, 0.3, 0.4, 0.5],
        }
    )
    row = summarize_levels(frame).iloc[0]
    assert row["n_runs"] == 3 and row["pretrain_loss"] == pytest.approx(1.2)
    assert row["mean"] == pytest.approx(0.3)  # runs 0.2, 0.3, 0.4: sd 0.1, t(0.975, 2) = 4.3027
    assert row["ci_high"] - row["mean"] == pytest.approx(4.302653 * 0.1 / np.sqrt(3), abs=1e-5)


def test_one_run_has_no_interval():
    summary = summarize_levels(synthetic_study_frame({"mask_iou_excess": (2.0, 0.01)}, seeds=(0,)))
    assert (summary["n_runs"] == 1).all() and summary["ci_low"].isna().all()
