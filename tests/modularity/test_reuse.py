"""The reuse test against known truth: hand-written models whose composites do or do not run through F's neurons."""

import pandas as pd
import pytest
from neox_truth import (  # type: ignore[import-not-found]
    COMPOSITES,
    composite_batch,
    neuron_mask,
    neurons,
    primitive_batch,
)

from modlens.components import Component
from modlens.masks import Mask, MaskError, fit_mask, mean_baseline
from modlens.models import tiny_model
from modlens.modularity import masked_accuracy, reuse_specificity, run_reuse, specific_part
from modlens.tasks import Batch


def composites(n: int = 32) -> tuple[dict, dict]:
    batches = {c: composite_batch(c[0], c[1], n, seed=k) for k, c in enumerate(COMPOSITES)}
    return {c: b for c, b in batches.items() if "F" in c}, {c: b for c, b in batches.items() if "F" not in c}


def test_composites_that_route_through_f_lose_what_f_computes(direct, reference):
    with_f, without_f = composites()
    frame = run_reuse(direct, neuron_mask(direct, "F"), with_f, without_f, reference=reference)
    assert list(frame.columns) == ["composite", "contains_f", "full", "ablated", "drop"]
    assert frame["composite"].tolist() == [*with_f, *without_f]
    assert (frame["full"] == 1.0).all()
    by = frame.set_index("composite")
    assert (by.loc[list(with_f), "drop"] == 1.0).all()  # the F step fails: the current token outbids the mean
    assert (by.loc[list(without_f), "drop"] == 0.0).all()
    assert reuse_specificity(frame) > 0.8


def test_composites_that_do_not_route_through_f_show_no_specificity(rerouted, reference):
    with_f, without_f = composites()
    mask = neuron_mask(rerouted, "F")
    # the mask is F's part of this model too: removing it breaks primitive F prompts ...
    assert masked_accuracy(rerouted, mask, primitive_batch("F", 64, seed=3), keep="outside", reference=reference) == 0
    # ... but the composites containing F are computed elsewhere (N_F'), so they lose nothing
    specificity = reuse_specificity(run_reuse(rerouted, mask, with_f, without_f, reference=reference))
    assert abs(specificity) < 0.1
    rerouted_part = neuron_mask(rerouted, "F'")
    assert reuse_specificity(run_reuse(rerouted, rerouted_part, with_f, without_f, reference=reference)) > 0.8


def test_a_base_mask_ablated_in_the_tuned_model(direct, rerouted, reference):
    """The study's setting: fit F's mask on the base model, then ablate it in each fine-tuned model."""
    base = direct
    mask = fit_mask(base, primitive_batch("F", 256, seed=5), steps=100, reference=mean_baseline(base, reference))
    assert set(mask.components()) == {Component(0, "neuron", n) for n in neurons("F")}
    assert mask.meta["mean_over"] == "reference"
    with_f, without_f = composites()
    kept = reuse_specificity(run_reuse(direct, mask, with_f, without_f, reference=mean_baseline(direct, reference)))
    moved = reuse_specificity(run_reuse(rerouted, mask, with_f, without_f, reference=reference))
    assert kept > 0.8 and abs(moved) < 0.1


def test_specific_part_removes_units_shared_with_other_subroutines(direct, reference):
    with_f, without_f = composites()
    # a mask of F that also holds units G needs (standing in for machinery every task shares)
    broad = neuron_mask(direct, "F", "G")
    specific = specific_part(broad, [neuron_mask(direct, "G"), neuron_mask(direct, "H") - broad])
    assert specific.equals(neuron_mask(direct, "F")) and specific.meta["specific_part"]
    broad_specificity = reuse_specificity(run_reuse(direct, broad, with_f, without_f, reference=reference))
    assert broad_specificity < 0.6  # G∘H and H∘G break too: the shared units hide the specificity
    assert reuse_specificity(run_reuse(direct, specific, with_f, without_f, reference=reference)) > 0.8


def test_precomputed_baseline_and_full_accuracies_give_the_same_frame(direct, reference):
    with_f, without_f = composites(16)
    mask = neuron_mask(direct, "F")
    plain = run_reuse(direct, mask, with_f, without_f, reference=reference)
    full = dict(zip(plain["composite"], plain["full"], strict=True))
    fast = run_reuse(direct, mask, with_f, without_f, reference=mean_baseline(direct, reference), full=full)
    pd.testing.assert_frame_equal(plain, fast)


def test_reuse_specificity_is_nan_without_one_side():
    frame = pd.DataFrame({"composite": ["FG"], "contains_f": [True], "full": [1.0], "ablated": [0.0], "drop": [1.0]})
    assert pd.isna(reuse_specificity(frame))


def test_bad_input_is_one_clear_error(direct, rerouted, reference):
    with_f, without_f = composites(4)
    mask = neuron_mask(direct, "F")
    with pytest.raises(MaskError, match="another model"):
        run_reuse(rerouted, mask, with_f, without_f, reference=mean_baseline(direct, reference))
    with pytest.raises(MaskError, match="both with and without"):
        run_reuse(direct, mask, with_f, {**without_f, "FG": with_f["FG"]}, reference=reference)
    with pytest.raises(MaskError, match="at least one of each"):
        run_reuse(direct, mask, with_f, {}, reference=reference)
    other = tiny_model("gpt_neox", d_vocab=16, n_layers=2, d_model=16, n_heads=2, n_ctx=8)
    with pytest.raises(MaskError, match="another shape"):
        run_reuse(direct, Mask.full(other.spec), with_f, without_f, reference=reference)
    with pytest.raises(MaskError, match="positions"):
        short = Batch(reference.tokens[:, :4], reference.answer_mask[:, :4], reference.task)
        run_reuse(direct, mask, with_f, without_f, reference=short)
