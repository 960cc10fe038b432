"""Modularity metrics: hand-computed cases, the hand-written two-head model, and the random-init control."""

import math
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from modlens.components import parse_components
from modlens.masks import Mask
from modlens.models import tiny_model
from modlens.modularity import (
    ablation_score,
    circuit_overlap,
    compositionality_rate,
    faithfulness,
    inverse_mask_drops,
    lepori_score,
    mask_consistency,
    run_modularity,
    subnetwork_score,
    weight_disentanglement,
)

sys.path.insert(0, str(Path(__file__).parent / "masks"))
from ground_truth import D_VOCAB, disk_tokenizer, task_batch, two_head_model  # type: ignore[import-not-found]


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: one thread is fastest, and robust on a shared machine
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def model():
    return two_head_model()


@pytest.fixture(scope="module")
def evals():
    return {name: task_batch(name, 128, seed=1) for name in "AB"}


def head(model, name):
    return Mask.from_components(parse_components([name], model.spec), model.spec)


def test_lepori_score_floors_at_chance():
    assert lepori_score(0.9, 0.3, chance_target=0.1, chance_other=0.1) == pytest.approx(0.6)
    assert lepori_score(0.05, 0.0, chance_target=0.1, chance_other=0.1) == 0.0  # both below chance
    assert lepori_score(0.0, 0.8, chance_target=0.125, chance_other=0.125) == pytest.approx(0.125 - 0.8)


def test_circuit_overlap_consistency_and_rate_on_hand_made_inputs(model):
    spec = model.spec
    base = Mask.from_components(parse_components(["L0H0", "L0H1", "L0N3"], spec), spec)
    tuned = Mask.from_components(parse_components(["L0H0", "L0N3", "L0N4", "L0N5"], spec), spec)
    got = circuit_overlap(base, tuned)
    assert got == pytest.approx({"precision": 2 / 3, "recall": 2 / 4, "iou": 2 / 5, "iomin": 2 / 3})
    assert mask_consistency([base, base, base]) == 1.0
    assert mask_consistency([base, tuned]) == pytest.approx(2 / 5)
    assert math.isnan(mask_consistency([base]))
    scores = pd.DataFrame({"subnetwork_score": [0.5, 0.5, -0.1, 0.2], "ablation_score": [-0.3, 0.1, -0.2, -0.01]})
    assert compositionality_rate(scores) == 0.5


def test_known_heads_have_the_expected_score_signs(model, evals):
    a, b = evals["A"], evals["B"]
    head_a = head(model, "L0H0")
    assert subnetwork_score(model, head_a, a, b) == pytest.approx(1 - 1 / 8)  # alone it does A, not B
    assert ablation_score(model, head_a, a, b) == pytest.approx(1 / 8 - 1)  # removed, A falls to chance
    drops = inverse_mask_drops(model, head_a, evals).set_index("evaluated_on")
    assert drops.loc["A", "drop"] > 0.7 and drops.loc["B", "drop"] == 0.0
    faith = faithfulness(model, head_a, a, n_random=4, seed=0)
    assert faith.query("circuit == 'mask'")["faithfulness"].item() == 1.0
    # a random single head is head 0 a quarter of the time; the mean stays well below the circuit
    assert faith.query("circuit == 'random'")["faithfulness"].mean() < 0.8


def test_run_modularity_recovers_the_structure_of_the_masks_it_keeps(model):
    subs = {name: task_batch(name, 256, seed=2) for name in "AB"}
    result = run_modularity(model, subs, seeds=(0, 1), steps=80, n_random=2, base=model)
    frame = result.frame
    assert list(frame.columns) == ["subroutine", "seed", "metric", "evaluated_on", "value"]
    value = frame.set_index(["subroutine", "seed", "metric", "evaluated_on"])["value"]
    gates = result.faithfulness
    for name, other in (("A", "B"), ("B", "A")):
        for seed in (0, 1):
            gate, mask = gates[(name, seed)], result.masks[(name, seed)]
            assert [str(c) for c in mask.components()] == [f"L0H{'AB'.index(name)}"]  # the fit finds its head
            assert gate.ratio == 1.0 and value[(name, seed, "faithful", None)] == float(gate.passed)
            both = gate.passed and gates[(other, seed)].passed
            if gate.passed:
                assert value[(name, seed, "subnetwork_score", other)] > 0.5
                assert value[(name, seed, "ablation_score", other)] < -0.5
                assert value[(name, seed, "inheritance_precision", None)] == 1.0  # same model: same masks
                assert value[(name, seed, "inheritance_precision_excess", None)] > 0.5
            else:
                # with four heads, a random one-head circuit is the right head a quarter of the time: then the
                # (correct) mask is not clearly better than chance, and nothing computed from it is reported
                assert gate.best_random == 1.0 and gate.reason.startswith("a random circuit of the same size")
                for metric in ("subnetwork_score", "ablation_score", "drop", "iou", "iou_excess"):
                    assert math.isnan(value[(name, seed, metric, other)])
                assert math.isnan(value[(name, seed, "inheritance_precision", None)])
            if both:
                assert value[(name, seed, "iou", other)] == 0.0 and value[(name, seed, "iou_excess", other)] < 0
    summary = frame[frame["seed"].isna()].set_index(["subroutine", "metric"])["value"]
    for name in "AB":
        rejected = sum(not gates[(name, s)].passed for s in (0, 1)) / 2
        assert summary[(name, "rejection_rate")] == rejected
    assert set(result.masks) == set(result.base_masks) == {("A", 0), ("A", 1), ("B", 0), ("B", 1)}


def test_random_init_control_is_rejected_by_the_gate():
    untrained = tiny_model("gpt2", tokenizer=disk_tokenizer(D_VOCAB), n_layers=1, d_model=32, n_heads=4,
                           d_mlp=16, n_ctx=8, seed=0)  # fmt: skip
    subs = {name: task_batch(name, 256, seed=2) for name in "AB"}
    with pytest.warns(UserWarning, match="nothing to localize"):
        result = run_modularity(untrained, subs, seeds=(0, 1), steps=40, n_random=1)
    frame = result.frame
    # the model computes nothing: every mask is rejected, and no score pretends otherwise
    assert all(g.reason.startswith("full model at chance") for g in result.faithfulness.values())
    assert (frame.query("metric == 'rejection_rate'")["value"] == 1.0).all()
    ablation = frame.query("metric == 'ablation_score'")["value"]
    assert len(ablation) == 4 and ablation.isna().all()


def test_weight_disentanglement_of_disjoint_task_vectors():
    base = two_head_model()
    with torch.no_grad():
        base.hf.transformer.h[0].attn.c_proj.weight.zero_()  # θ0: neither head writes
    tuned = {}
    for name, keep in (("A", slice(0, 8)), ("B", slice(8, 16))):
        one = two_head_model()
        with torch.no_grad():
            w = one.hf.transformer.h[0].attn.c_proj.weight
            rest = torch.ones(w.shape[0], dtype=torch.bool)
            rest[keep] = False
            w[rest] = 0.0  # only this task's head writes
        tuned[name] = one
    batches = {name: task_batch(name, 64, seed=3) for name in "AB"}
    frame = weight_disentanglement(base, tuned, batches, alphas=(0.0, 1.0))
    err = frame.set_index(["alpha_1", "alpha_2"])["error"]
    assert err[(0.0, 0.0)] == 0.0 and err[(1.0, 1.0)] == 0.0  # each head leaves the other task alone
    assert err[(0.0, 1.0)] > 0.5  # with A's head off, B's head decides A's answers (its blur wins)
    assert set(frame.columns) == {"alpha_1", "alpha_2", "error", "error_A", "error_B"}
