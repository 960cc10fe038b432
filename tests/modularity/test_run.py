"""run_modularity on the hand-written model: step masks of one composite prompt, the gate, a fixed reference."""

import math

import pytest
from neox_truth import composite_batch, neurons, primitive_batch  # type: ignore[import-not-found]

from modlens.components import Component
from modlens.masks import MaskError
from modlens.modularity import run_modularity
from modlens.tasks import Batch


def steps_of(batch: Batch) -> dict[str, Batch]:
    """The two steps of a composite prompt: the same tokens, the answer mask on one segment each."""
    first, second = batch.answer_mask.clone(), batch.answer_mask.clone()
    first[:, 4:] = False
    second[:, :4] = False
    return {"step1": Batch(batch.tokens, first, "step1"), "step2": Batch(batch.tokens, second, "step2")}


@pytest.fixture(scope="module")
def step_result(direct, reference):
    subs = steps_of(composite_batch("F", "G", 256, seed=7))
    return run_modularity(direct, subs, seeds=(0,), steps=100, reference=reference)


def test_step_masks_of_one_prompt_find_each_steps_neurons_and_pass_the_gate(step_result):
    masks, gates, step_frame = step_result.masks, step_result.faithfulness, step_result.frame
    for step, op in (("step1", "F"), ("step2", "G")):
        assert set(masks[(step, 0)].components()) == {Component(0, "neuron", n) for n in neurons(op)}
        assert gates[(step, 0)].passed and gates[(step, 0)].chance == pytest.approx(1 / 8)
    value = step_frame.set_index(["subroutine", "seed", "metric", "evaluated_on"])["value"]
    for step, other in (("step1", "step2"), ("step2", "step1")):
        assert value[(step, 0, "faithful", None)] == 1.0
        assert value[(step, 0, "subnetwork_score", other)] == pytest.approx(1 - 1 / 8)
        assert value[(step, 0, "ablation_score", other)] == pytest.approx(1 / 8 - 1)
        assert value[(step, 0, "iou", other)] == 0.0
        # 8 of 32 neurons each: a random pair shares 2 on average, so disjoint masks are below chance
        assert value[(step, 0, "iomin_excess", other)] == pytest.approx(-8 * 8 / 32 / 8)
        assert value[(step, 0, "iou_excess", other)] < -0.1
    summary = step_frame[step_frame["seed"].isna()].set_index(["subroutine", "metric"])["value"]
    assert summary[("step1", "compositionality_rate")] == 1.0 and summary[("step2", "rejection_rate")] == 0.0


def test_a_subroutine_the_model_cannot_do_is_rejected_and_reported_as_nan(direct, reference):
    # answers shifted by one position: the model never predicts them, so any mask of it measures nothing
    f = primitive_batch("F", 128, seed=8)
    wrong = Batch(f.tokens.roll(1, dims=1), f.answer_mask, "wrong")
    with pytest.warns(UserWarning, match="nothing to localize"):
        result = run_modularity(direct, {"F": f, "wrong": wrong}, seeds=(0,), steps=30, n_random=2, reference=reference)
    frame = result.frame
    value = frame.set_index(["subroutine", "seed", "metric", "evaluated_on"])["value"]
    assert result.faithfulness[("wrong", 0)].reason.startswith("full model at chance")
    assert value[("wrong", 0, "faithful", None)] == 0.0
    for metric in ("subnetwork_score", "ablation_score", "drop", "accuracy_inside", "iou", "iomin_excess"):
        assert math.isnan(value[("wrong", 0, metric, "F")])
    for metric in ("iou", "iomin", "iou_excess", "iomin_excess"):  # overlaps it takes part in
        assert math.isnan(value[("F", 0, metric, "wrong")])
    # F's own mask is faithful: its scores stand (against a subroutine at chance, floored at chance)
    assert value[("F", 0, "subnetwork_score", "wrong")] == pytest.approx(1 - 1 / 64)
    assert value[("F", 0, "faithful", None)] == 1.0 and value[("F", 0, "drop", "F")] == 1.0


def test_a_reference_of_another_length_is_one_clear_error(direct, reference):
    subs = steps_of(composite_batch("F", "G", 8, seed=7))
    short = Batch(reference.tokens[:, :4], reference.answer_mask[:, :4])
    with pytest.raises(MaskError, match="reference batch has 4 positions"):
        run_modularity(direct, subs, seeds=(0,), steps=1, reference=short)
