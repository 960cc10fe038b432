"""Fine-tuning method as a second factor: headline on one method, the same analysis per method, paired contrasts."""

import numpy as np
import pandas as pd
import pandas.testing as pdt
import pytest

from modlens.analysis import analyse_study, synthetic_study_frame
from modlens.analysis.methods import absent_metrics, method_contrast, methods_in

N_PERM = 999
PRIMARY = ("heldout_composite_accuracy", "reuse_specificity")
METRICS = {"heldout_composite_accuracy": (-0.3, 0.02), "reuse_specificity": (0.0, 0.1), "finetune_steps": (50.0, 5.0)}
BEST = 3000  # the highest step of synthetic_study_frame's trajectory
PROXY_REASON = "proxy-tuning leaves the weights unchanged"


def method_frame(
    shifts: dict[str, float],
    *,
    metric: str = "heldout_composite_accuracy",
    seeds=range(8),
    noise: float = 0.0,
    seed: int = 0,
    metrics=METRICS,
) -> pd.DataFrame:
    """One copy of a synthetic study per method (same base checkpoints: same losses), ``metric`` shifted by the
    method's amount at the best level, plus independent noise per fine-tune."""
    base = synthetic_study_frame(metrics, seeds=tuple(seeds), seed=seed)
    rng = np.random.default_rng(seed + 1)
    parts = []
    for method, shift in shifts.items():
        part = base.assign(method=method, unit=base["unit"] + f"-{method}")
        chosen = part["metric"] == metric
        part.loc[chosen & (part["step"] == BEST), "value"] += shift
        part.loc[chosen, "value"] += noise * rng.standard_normal(int(chosen.sum()))
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def with_proxy(frame: pd.DataFrame, mechanistic: str = "reuse_specificity") -> pd.DataFrame:
    no_reason = pd.Series(pd.NA, index=frame.index, dtype=object)
    proxy = frame[frame["method"] == "full"].assign(method="proxy", reason=no_reason)
    proxy["unit"] = proxy["unit"].str.replace("-full", "-proxy")
    gone = proxy["metric"] == mechanistic
    proxy.loc[gone, "value"] = np.nan
    proxy.loc[gone, "reason"] = PROXY_REASON
    return pd.concat([frame, proxy], ignore_index=True)


def test_methods_in_registry_order_and_missing_column_is_full():
    frame = method_frame({"lora": 0.0, "full": 0.0, "upper": 0.0}, seeds=(0, 1, 2))
    assert methods_in(frame) == ("full", "upper", "lora")
    assert methods_in(frame.drop(columns="method")) == ("full",)


def test_frame_without_method_column_behaves_as_before():
    frame = synthetic_study_frame(METRICS, seeds=(0, 1, 2))
    plain = analyse_study(frame, primary_metrics=PRIMARY, n_perm=99, power_studies=0)
    tagged = analyse_study(frame.assign(method="full"), primary_metrics=PRIMARY, n_perm=99, power_studies=0)
    assert plain.methods is None and tagged.methods is None and plain.method == "full"
    pdt.assert_frame_equal(plain.answer.primary, tagged.answer.primary)
    pdt.assert_frame_equal(plain.summary, tagged.summary)


def test_headline_uses_full_rows_only():
    frame = method_frame({"full": 0.0, "upper": 0.3, "lora": -0.2}, noise=0.05)
    both = analyse_study(frame, primary_metrics=PRIMARY, n_perm=99, power_studies=0)
    full_only = frame[frame["method"] == "full"].drop(columns="method")
    alone = analyse_study(full_only, primary_metrics=PRIMARY, n_perm=99, power_studies=0)
    pdt.assert_frame_equal(both.answer.primary, alone.answer.primary)
    pdt.assert_frame_equal(both.summary, alone.summary)
    assert both.method == "full" and both.methods is not None and both.methods.headline == "full"
    assert both.answer.summary == alone.answer.summary


def test_headline_without_full_is_first_method():
    frame = method_frame({"lora": 0.0, "upper": 0.0}, seeds=(0, 1, 2))
    analysis = analyse_study(frame, primary_metrics=PRIMARY, n_perm=99, power_studies=0)
    assert analysis.method == "upper" and analysis.methods is not None
    assert set(analysis.methods.contrast["reference"]) == {"upper"}


def test_planted_difference_detected_with_sign_and_size():
    frame = method_frame({"full": 0.0, "upper": 0.3, "lora": 0.0})
    contrast = method_contrast(frame, PRIMARY, n_perm=N_PERM).set_index(["metric", "method"])
    row = contrast.loc[("heldout_composite_accuracy", "upper")]
    np.testing.assert_allclose(row["difference"], 0.3, rtol=1e-9)
    assert row["n_runs"] == 8 and row["best_step"] == str(BEST) and row["exact"]
    assert row["p_value"] == pytest.approx(2 / 2**8)  # only the all-positive and all-negative patterns tie
    assert row["p_adjusted"] == pytest.approx(2 * 2 / 2**8)  # Holm over the two contrasts of this metric
    assert row["ci_low"] > 0 and row["ci_low"] < 0.3 < row["ci_high"]
    same = contrast.loc[("heldout_composite_accuracy", "lora")]
    assert same["difference"] == 0 and same["p_value"] == 1.0
    untouched = contrast.loc[("reuse_specificity", "upper")]
    assert untouched["difference"] == 0 and untouched["note"] == ""


def test_planted_difference_in_the_sentences():
    frame = method_frame({"full": 0.0, "upper": 0.3, "lora": 0.0}, noise=0.01)
    found = analyse_study(frame, primary_metrics=PRIMARY, n_perm=N_PERM, power_studies=0).methods
    assert found is not None
    upper = [s for s in found.sentences if s.startswith("heldout_composite_accuracy, upper minus full")]
    assert len(upper) == 1 and "upper gives higher heldout_composite_accuracy than full" in upper[0]
    lora = [s for s in found.sentences if s.startswith("heldout_composite_accuracy, lora minus full")]
    assert "no difference from full is established" in lora[0]
    assert found.sentences[0].startswith("The study fine-tuned with 3 methods (full, upper, lora).")
    per = found.per_method.set_index(["method", "metric"])
    assert per.loc[("upper", "heldout_composite_accuracy"), "verdict"].startswith("established")


def test_few_runs_say_the_test_cannot_reject():
    frame = method_frame({"full": 0.0, "upper": 0.3}, seeds=(0, 1, 2, 3))
    found = analyse_study(frame, primary_metrics=PRIMARY, n_perm=N_PERM, power_studies=0).methods
    assert found is not None
    row = found.contrast.set_index(["metric", "method"]).loc[("heldout_composite_accuracy", "upper")]
    assert row["min_p"] == pytest.approx(2 / 16) and row["p_value"] == pytest.approx(2 / 16)
    assert row["min_p_adjusted"] == pytest.approx(2 / 16)  # one contrast per metric: Holm changes nothing
    assert any("With 4 runs no Holm-adjusted sign-flip p can fall below 0.12" in s for s in found.sentences)


def test_null_contrasts_hold_their_level_and_intervals_cover_zero():
    p_values, covered = [], []
    for study in range(150):
        null = {"reuse_specificity": (0.0, 1.0)}
        shifts = {"full": 0.0, "upper": 0.0}
        frame = method_frame(shifts, metric="reuse_specificity", noise=1.0, seed=study, metrics=null)
        row = method_contrast(frame, ["reuse_specificity"], n_perm=N_PERM).iloc[0]
        p_values.append(row["p_value"])
        covered.append(row["ci_low"] <= 0 <= row["ci_high"])
    p = np.array(p_values)
    assert np.mean(p < 0.05) <= 0.08  # exact test: the level holds (binomial sd at 150 studies ≈ 0.018)
    assert 0.35 <= np.mean(p < 0.5) <= 0.65  # roughly uniform
    assert np.mean(covered) >= 0.9


def test_proxy_mechanistic_metrics_are_absent_with_their_reason():
    frame = with_proxy(method_frame({"full": 0.0, "upper": 0.1}, noise=0.05))
    analysis = analyse_study(frame, primary_metrics=PRIMARY, n_perm=99, power_studies=0)
    found = analysis.methods
    assert found is not None
    absent = absent_metrics(frame)
    assert absent[["method", "metric", "reason"]].values.tolist() == [["proxy", "reuse_specificity", PROXY_REASON]]
    contrast = found.contrast.set_index(["metric", "method"])
    gone = contrast.loc[("reuse_specificity", "proxy")]
    assert gone["note"] == f"absent: {PROXY_REASON}" and np.isnan(gone["difference"]) and gone["n_runs"] == 0
    assert np.isnan(gone["p_value"]) and np.isnan(gone["p_adjusted"])
    kept = contrast.loc[("heldout_composite_accuracy", "proxy")]
    assert kept["note"] == "" and kept["difference"] == pytest.approx(0.0)
    per = found.per_method.set_index(["method", "metric"])
    assert per.loc[("proxy", "reuse_specificity"), "reason"] == f"absent: {PROXY_REASON}"
    assert per.loc[("proxy", "reuse_specificity"), "verdict"] == "not assessed"
    # the sentences mark the absence where it matters and state its reason once
    assert "reuse_specificity, proxy against full: not compared (absent)." in found.sentences
    assert sum(PROXY_REASON in s for s in found.sentences) == 1
    assert f"Absent for proxy: {PROXY_REASON}." in found.sentences
    # the headline is still full's and unaffected by the proxy rows
    full_only = frame[frame["method"] == "full"].drop(columns=["method", "reason"])
    alone = analyse_study(full_only, primary_metrics=PRIMARY, n_perm=99, power_studies=0)
    pdt.assert_frame_equal(analysis.answer.primary, alone.answer.primary)


def test_contrast_without_group_columns():
    frame = method_frame({"full": 0.0, "upper": 0.3}).drop(columns=["depth", "corpus", "label_noise"])
    row = method_contrast(frame, ["heldout_composite_accuracy"], n_perm=N_PERM).iloc[0]
    assert row["n_runs"] == 8 and row["difference"] == pytest.approx(0.3) and row["best_step"] == str(BEST)


def test_the_untrained_sentence_counts_the_bases_that_met_the_target_before_any_step():
    """Known truth: 3 of the 8 most-pretrained full fine-tunes took 0 steps; the sentence says exactly that, and a
    frame where every fine-tune trained says nothing of it."""
    frame = method_frame({"full": 0.0, "upper": 0.1})
    steps = (frame["metric"] == "finetune_steps") & (frame["step"] == BEST)
    untrained = steps & frame["seed"].isin([0, 1, 2])
    frame.loc[untrained, "value"] = 0.0
    sentences = analyse_study(frame, primary_metrics=PRIMARY, n_perm=99, power_studies=0).methods.sentences
    assert [s for s in sentences if "before any step" in s] == [
        next(s for s in sentences if s.startswith("At the most-pretrained checkpoints 3 of 8 bases"))
    ]
    trained = method_frame({"full": 0.0, "upper": 0.1})
    found = analyse_study(trained, primary_metrics=PRIMARY, n_perm=99, power_studies=0).methods
    assert not any("before any step" in s for s in found.sentences)
