"""The plain-language answer: direction, strength, certainty and modularity reading follow the numbers."""

import pytest

from modlens.analysis import answer, strength, synthetic_study_frame

N_BOOT = 400


def _sentence(result, metric, kind):
    return next(f for f in result.findings if f.metric == metric and f.kind == kind)


@pytest.mark.parametrize(("rho", "band"), [(0.05, "negligible"), (-0.2, "weak"), (0.3, "moderate"), (-0.5, "strong")])
def test_strength_bands(rho, band):
    assert strength(rho) == band


def test_known_direction_and_modularity():
    frame = synthetic_study_frame(
        {"mask_iou": (2.0, 0.01), "heldout_composite_accuracy": (2.0, 0.01), "finetune_steps": (2.0, 0.01)}
    )
    result = answer(frame, n_boot=N_BOOT)
    iou = _sentence(result, "mask_iou", "correlation")
    assert "better pretraining (lower loss) goes with lower mask_iou" in iou.sentence
    assert "strong association" in iou.sentence and "the 95% interval excludes zero" in iou.sentence
    assert "from 5 seeds" in iou.sentence
    assert iou.verdict == "more modular" and "gives more modular fine-tuned models" in iou.sentence
    acc = _sentence(result, "heldout_composite_accuracy", "correlation")
    assert acc.verdict == "less modular" and "gives less modular" in acc.sentence
    steps = _sentence(result, "finetune_steps", "correlation")
    assert steps.verdict == "context" and "not a modularity measure" in steps.sentence
    control = _sentence(result, "mask_iou", "control")
    assert "lower mask_iou than random init" in control.sentence and control.verdict == "more modular"
    assert f"{control.estimate:+.3g}" in control.sentence
    summary = result.summary[0]
    assert "of 2 modularity metrics 1 point to more modular fine-tuned models (mask_iou)" in summary
    assert "1 to less modular (heldout_composite_accuracy)" in summary and "disagree" in summary
    assert result.sentences[0] == summary and len(result.sentences) == 2 + 6


def test_noise_is_inconclusive():
    result = answer(synthetic_study_frame({"subnetwork_score": (0.0, 1.0)}, seed=3), n_boot=N_BOOT)
    corr = _sentence(result, "subnetwork_score", "correlation")
    assert corr.verdict == "inconclusive"
    assert "inconclusive: the 95% interval includes zero" in corr.sentence
    assert "not established" in corr.sentence
    assert "0 point to more modular" in result.summary[0] and "1 are inconclusive" in result.summary[0]
    assert "do not answer which way" in result.summary[0]


def test_one_seed_says_no_interval():
    result = answer(synthetic_study_frame({"mask_iou": (2.0, 0.01)}, seeds=(7,)), n_boot=N_BOOT)
    for finding in result.findings:
        assert "with one seed there is no interval over seeds" in finding.sentence
        assert finding.verdict == "inconclusive" and "CI" not in finding.sentence


def test_constant_says_undefined():
    result = answer(synthetic_study_frame({"mask_iou": (0.0, 0.0)}), n_boot=N_BOOT)
    corr = _sentence(result, "mask_iou", "correlation")
    assert "undefined because mask_iou or the pretraining loss is constant" in corr.sentence
    assert corr.verdict == "not assessed" and "1 could not be assessed (mask_iou)" in result.summary[0]
    assert "None could be assessed, so the data do not answer the question." in result.summary[0]


def test_group_agreement_is_reported():
    frame = synthetic_study_frame({"mask_iou": (2.0, 0.01)}, depths=(2, 3, 4))
    corr = _sentence(answer(frame, n_boot=N_BOOT), "mask_iou", "correlation")
    assert "Within the 3 depth/corpus/noise groups, 3 have ρ of the same sign (3 with intervals excluding zero)" in (
        corr.sentence
    )
    assert "0 the opposite sign (0 excluding zero)." in corr.sentence
