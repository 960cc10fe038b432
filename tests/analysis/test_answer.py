"""The plain-language answer leads with the primary metrics; every sentence follows its numbers."""

import numpy as np
import pytest

from modlens.analysis import analyse_study, strength, synthetic_study_frame
from modlens.errors import ConfigError

N_PERM = 199
PRIMARY = ("heldout_composite_accuracy", "reuse_specificity", "weight_drift_upper_share")


def _finding(result, metric, kind):
    return next(f for f in result.findings if f.metric == metric and f.kind == kind)


@pytest.mark.parametrize(("rho", "band"), [(0.05, "negligible"), (-0.2, "weak"), (0.3, "moderate"), (-0.5, "strong")])
def test_strength_bands(rho, band):
    assert strength(rho) == band


@pytest.fixture(scope="module")
def result():
    metrics = {
        "heldout_composite_accuracy": (-2.0, 0.01),  # rises with better pretraining: more modular
        "reuse_specificity": (0.0, 1.0),  # noise
        "weight_drift_upper_share": (0.0, 1.0),
        "mask_iou_excess": (2.0, 0.01),
        "finetune_steps": (2.0, 0.01),
    }
    frame = synthetic_study_frame(metrics, depths=(2, 3), seeds=range(6), seed=2)
    return analyse_study(frame, primary_metrics=PRIMARY, n_perm=N_PERM, power_studies=100).answer


def test_primary_table_leads(result):
    table = result.primary.set_index("metric")
    assert list(table.index) == list(PRIMARY)
    assert table.loc["heldout_composite_accuracy", "verdict"] == "established: more modular"
    assert table.loc["reuse_specificity", "verdict"] == "not established"
    summary = result.summary[0]
    assert summary.startswith("Of the 3 primary metrics, 1 is established: better pretraining goes with higher ")
    assert "heldout_composite_accuracy, i.e. more modular fine-tuned models (ρ = " in summary
    assert "Holm-adjusted p = " in summary and "2 are not established: reuse_specificity (ρ = " in summary
    row = table.loc["heldout_composite_accuracy"]
    assert f"(ρ = {row['rho']:+.2f}, 95% interval {row['ci_low']:+.2f} to {row['ci_high']:+.2f}" in summary
    assert row["rho"] < 0  # loss falls as pretraining improves: "higher" reads a negative ρ(loss, metric)
    assert "negative ρ means the metric rises as pretraining gets better" in result.summary[1]
    assert result.sentences[0] == summary


def test_descriptive_metrics_get_no_verdict_and_no_tally(result):
    text = " ".join(result.sentences)
    assert "point to more modular" not in text and "disagree in direction" not in text
    iou = _finding(result, "mask_iou_excess", "correlation")
    assert "better pretraining goes with lower mask_iou_excess, a strong association" in iou.sentence
    assert "(higher mask_iou_excess means less modular)" in iou.sentence and "established" not in iou.sentence
    assert "Per group: " in iou.sentence and "pooled across groups (summary only)" in iou.sentence
    steps = _finding(result, "finetune_steps", "correlation")
    assert "means" not in steps.sentence  # context: no modularity reading
    control = _finding(result, "mask_iou_excess", "control")
    assert "lower mask_iou_excess than random init" in control.sentence and "sign-flip p" in control.sentence
    assert [f.metric for f in result.findings[:2]] == ["heldout_composite_accuracy"] * 2  # primary first


def test_power_is_reported(result):
    assert result.design == "2 groups × 6 runs × steps 300/1000/3000"
    assert 0 <= result.power <= 1 and any(result.design in s for s in result.summary)


def test_underpowered_design_says_so():
    frame = synthetic_study_frame(
        {"heldout_composite_accuracy": (-2.0, 0.01)}, seeds=(0, 1, 2), steps={0: 3.0, 300: 1.5, 1000: 0.8}
    )
    result = analyse_study(
        frame, primary_metrics=("heldout_composite_accuracy",), n_perm=N_PERM, power_studies=100
    ).answer
    # 3 runs × 2 checkpoints: 8 within-run permutations, so no p below 2/8: nothing can be established.
    assert result.primary["verdict"].iloc[0] == "not established" and result.primary["p_value"].iloc[0] == 0.25
    assert result.underpowered and result.power == 0
    assert any("is underpowered" in s and "in only 0% of simulated studies" in s for s in result.summary)


def test_metric_missing_for_all_pretrained_units():
    frame = synthetic_study_frame({"reuse_specificity": (1.0, 0.1), "heldout_composite_accuracy": (1.0, 0.1)})
    frame.loc[(frame["metric"] == "reuse_specificity") & (frame["step"] != 0), "value"] = np.nan
    result = analyse_study(frame, n_perm=N_PERM, power_studies=0).answer
    row = result.primary.set_index("metric").loc["reuse_specificity"]
    assert row["verdict"] == "not assessed" and "15 pretrained units were excluded" in row["reason"]
    assert "could not be assessed: reuse_specificity (all 15 pretrained units were excluded" in result.summary[0]
    assert np.isnan(result.power) and not result.underpowered
    sentence = _finding(result, "reuse_specificity", "correlation").sentence
    assert "no pretrained unit has a value (15 pretrained units excluded: no value)" in sentence


def test_too_many_primary_metrics():
    frame = synthetic_study_frame({"x": (1.0, 0.1)})
    with pytest.raises(ConfigError, match="one to 3"):
        analyse_study(frame, primary_metrics=("a", "b", "c", "d"), power_studies=0)
