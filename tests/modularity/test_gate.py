"""The faithfulness gate on the hand-written model: it keeps the known circuit and rejects what is not one."""

import pytest
import torch
from neox_truth import D_VOCAB, neuron_mask, neurons, primitive_batch  # type: ignore[import-not-found]

from modlens.components import Component
from modlens.masks import Mask, MaskError, fit_mask, mean_baseline
from modlens.models.factory import tiny_model
from modlens.modularity import check_faithfulness, faithfulness
from modlens.tasks.metrics import token_accuracy


@pytest.fixture(scope="module")
def f_batch():
    return primitive_batch("F", 128, seed=1)


def test_the_known_circuit_passes(direct, f_batch, reference):
    gate = check_faithfulness(direct, neuron_mask(direct, "F"), f_batch, reference=reference)
    assert gate.passed and gate.reason == ""
    assert gate.full == 1.0 and gate.kept == 1.0 and gate.ratio == 1.0 and gate.chance == 1 / 64
    assert len(gate.random_ratios) == 5
    # 8 random neurons of 32 hold about 2 of F's 8, and both steps need their own: about (2/8)^2 kept
    assert gate.best_random < 0.3


def test_a_fitted_mask_passes(direct, reference):
    means = mean_baseline(direct, reference)
    mask = fit_mask(direct, primitive_batch("F", 256, seed=5), steps=100, reference=means)
    assert set(mask.components()) == {Component(0, "neuron", n) for n in neurons("F")}
    assert check_faithfulness(direct, mask, primitive_batch("F", 128, seed=6), reference=means).passed


@pytest.mark.parametrize(
    ("circuit", "reason"),
    [
        (lambda m: ~Mask.full(m.spec), "keeps 0.00 of full accuracy (< 0.8)"),  # empty
        (lambda m: neuron_mask(m, "G"), "keeps 0.00 of full accuracy (< 0.8)"),  # another operation's part
        (lambda m: neuron_mask(m, "F").random_like(0), "of full accuracy (< 0.8)"),  # random, same size
        (lambda m: neuron_mask(m, "F") - neuron_mask(m, "F").random_like(1), "of full accuracy (< 0.8)"),  # half
    ],
)
def test_masks_that_do_not_reproduce_the_task_fail(direct, f_batch, reference, circuit, reason):
    gate = check_faithfulness(direct, circuit(direct), f_batch, reference=reference)
    assert not gate.passed and reason in gate.reason and gate.ratio < 0.8


def test_the_full_mask_keeps_everything_but_so_does_a_random_circuit_of_its_size(direct, f_batch, reference):
    gate = check_faithfulness(direct, Mask.full(direct.spec), f_batch, reference=reference)
    assert gate.ratio == 1.0 and gate.random_ratios == (1.0,) * 5
    assert not gate.passed
    assert gate.reason == "a random circuit of the same size keeps 1.00, not clearly less (margin 0.2)"


def test_a_model_at_chance_has_no_faithful_mask(f_batch, reference):
    untrained = tiny_model("gpt_neox", d_vocab=D_VOCAB, n_layers=1, d_model=80, n_heads=4, d_mlp=32, n_ctx=8)
    gate = check_faithfulness(untrained, neuron_mask(untrained, "F"), f_batch, reference=reference, n_random=1)
    assert not gate.passed and gate.reason.startswith("full model at chance")


def test_chance_follows_the_metric_and_bad_options_raise(direct, f_batch, reference):
    gate = check_faithfulness(direct, neuron_mask(direct, "F"), f_batch, reference=reference, metric=token_accuracy)
    assert gate.passed and gate.chance == pytest.approx(1 / 8)
    with pytest.raises(MaskError, match="at least one random circuit"):
        check_faithfulness(direct, neuron_mask(direct, "F"), f_batch, reference=reference, n_random=0)


def test_gate_measurements_equal_the_faithfulness_frame(direct, f_batch, reference):
    """The stacked forward of the gate equals scoring each circuit on its own."""
    mask = neuron_mask(direct, "F") | neuron_mask(direct, "G").random_like(4)
    gate = check_faithfulness(direct, mask, f_batch, reference=reference, n_random=3, seed=2)
    frame = faithfulness(direct, mask, f_batch, reference=reference, n_random=3, seed=2)
    assert gate.ratio == frame.query("circuit == 'mask'")["faithfulness"].item()
    torch.testing.assert_close(
        torch.tensor(gate.random_ratios), torch.tensor(frame.query("circuit == 'random'")["faithfulness"].tolist())
    )


def test_weight_masks_are_gated_too(direct, f_batch):
    from modlens.masks.apply import weight_shapes

    shape = dict(Mask.full(direct.spec).shape)
    units = {k: torch.ones(s, dtype=torch.bool) for k, s in weight_shapes(direct).items()}
    everything = Mask("weight", units, shape)
    full = check_faithfulness(direct, everything, f_batch, replacement="zero", n_random=2)
    assert full.ratio == 1.0 and full.reason.startswith("a random circuit of the same size keeps 1.00")
    empty = check_faithfulness(direct, ~everything, f_batch, replacement="zero", n_random=2)
    assert empty.reason == "keeps 0.00 of full accuracy (< 0.8)"
