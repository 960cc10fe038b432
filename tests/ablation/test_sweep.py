"""The exact sweep equals the plain loop of ``run_with_hooks`` on every family, replacement and metric."""

import pandas as pd
import pytest
import torch
from frames import ATOL, RTOL, assert_frames_close  # type: ignore[import-not-found]

from modlens.ablation import ablate, run_ablation_loop, run_ablation_sweep
from modlens.components import Component, enumerate_components, parse_components
from modlens.interventions.stack import DecoderStack
from modlens.models import Model, tiny_model
from modlens.tasks import Batch, SyntheticTask, TaskLayout, answer_accuracy, logit_diff, loss, token_accuracy


@pytest.fixture(scope="module")
def batch(layout: TaskLayout) -> Batch:
    return SyntheticTask.from_name("reverse", layout).sample(12, split="test", seed=0)


@pytest.fixture(scope="module")
def other_batch(layout: TaskLayout) -> Batch:
    return SyntheticTask.from_name("sort", layout).sample(9, split="test", seed=1)


def some_components(model: Model) -> list[Component]:
    spec = model.spec
    neurons = [Component(0, "neuron", 0), Component(1, "neuron", spec.d_mlp - 1), Component(1, "neuron", 7)]
    return (
        enumerate_components(spec, "head")
        + enumerate_components(spec, "attn")
        + enumerate_components(spec, "mlp")
        + neurons
    )


def assert_same(fast: pd.DataFrame, slow: pd.DataFrame, *, min_change: float = 1e-4) -> None:
    assert_frames_close(fast, slow)
    # the ablations must actually move the metric, or equality proves nothing
    assert fast["change"].abs().max() > min_change


@pytest.mark.parametrize("replacement", ["zero", "mean", "resample"])
def test_sweep_equals_plain_loop(family_model: Model, batch: Batch, replacement: str) -> None:
    comps = some_components(family_model)
    fast = run_ablation_sweep(family_model, batch, comps, replacement=replacement, seed=3)
    slow = run_ablation_loop(family_model, batch, comps, replacement=replacement, seed=3)
    assert_same(fast, slow)
    assert list(fast.columns) == [
        "component",
        "layer",
        "kind",
        "index",
        "replacement",
        "metric",
        "clean",
        "ablated",
        "change",
    ]


@pytest.mark.parametrize("metric", [token_accuracy, answer_accuracy, logit_diff])
def test_sweep_equals_loop_for_other_metrics(family_model: Model, batch: Batch, metric) -> None:
    comps = parse_components(["L0H1", "L1H3", "L0.mlp", "L1.attn"])
    fast = run_ablation_sweep(family_model, batch, comps, replacement="zero", metric=metric)
    slow = run_ablation_loop(family_model, batch, comps, replacement="zero", metric=metric)
    for col in ("clean", "ablated"):
        torch.testing.assert_close(torch.tensor(fast[col]), torch.tensor(slow[col]), rtol=RTOL, atol=ATOL)


def test_user_metric_sees_full_logits(family_model: Model, batch: Batch) -> None:
    def last_logit_mean(logits: torch.Tensor, batch: Batch) -> torch.Tensor:
        return logits[:, -1].mean() + logits[:, 0].std()

    comps = parse_components(["L0H0", "L1H2", "L1.mlp", "L0N3"])
    fast = run_ablation_sweep(family_model, batch, comps, replacement="mean", metric=last_logit_mean)
    slow = run_ablation_loop(family_model, batch, comps, replacement="mean", metric=last_logit_mean)
    assert (fast["metric"] == "last_logit_mean").all()
    assert_same(fast, slow, min_change=2e-5)


def test_reference_batch_and_tiny_memory_budget(family_model: Model, batch: Batch, other_batch: Batch) -> None:
    comps = some_components(family_model)
    fast = run_ablation_sweep(family_model, batch, comps, replacement="mean", reference=other_batch, memory_budget=1)
    slow = run_ablation_loop(family_model, batch, comps, replacement="mean", reference=other_batch)
    assert_same(fast, slow)


def test_ablating_nothing_changes_nothing(family_model: Model, batch: Batch) -> None:
    frame = run_ablation_sweep(family_model, batch, [], replacement="mean")
    assert frame.empty and list(frame.columns)[-1] == "change"
    with torch.no_grad():
        clean = family_model.bridge(batch.tokens)
        with ablate(family_model, [], replacement="mean", reference=batch) as bridge:
            ablated = bridge(batch.tokens)
    torch.testing.assert_close(ablated, clean, rtol=0, atol=0)
    loop = run_ablation_loop(family_model, batch, parse_components(["L0H0"]), replacement="zero")
    assert loop["clean"].iloc[0] == pytest.approx(float(loss(clean, batch)), rel=1e-6)


def test_zero_ablating_a_zero_activation_is_the_identity(tokenizer) -> None:
    model = tiny_model("gpt2", tokenizer=tokenizer, n_layers=2, d_model=32, n_heads=4, n_ctx=32, seed=5)
    o_proj = DecoderStack(model).part(0, "o_proj")
    with torch.no_grad():  # layer 0's attention now outputs exactly zero
        o_proj.weight.zero_()
        o_proj.bias.zero_()
    batch = SyntheticTask.from_name("reverse", TaskLayout(n_digits=4)).sample(6, split="test", seed=0)
    comps = parse_components(["L0.attn"])
    for frame in (
        run_ablation_sweep(model, batch, comps, replacement="zero"),
        run_ablation_loop(model, batch, comps, replacement="zero"),
    ):
        assert frame["change"].iloc[0] == 0.0


def test_resample_is_deterministic_under_a_seed(family_model: Model, batch: Batch) -> None:
    comps = parse_components(["L0H0", "L0H2", "L1.mlp"])
    a = run_ablation_sweep(family_model, batch, comps, replacement="resample", seed=11)
    b = run_ablation_sweep(family_model, batch, comps, replacement="resample", seed=11)
    c = run_ablation_sweep(family_model, batch, comps, replacement="resample", seed=12)
    pd.testing.assert_frame_equal(a, b)
    assert not a["ablated"].equals(c["ablated"])


def test_out_of_range_components_are_rejected(family_model: Model, batch: Batch) -> None:
    from modlens.components import ComponentError

    with pytest.raises(ComponentError, match=r"layers 0\.\.1"):
        run_ablation_sweep(family_model, batch, [Component(2, "mlp")])
    with pytest.raises(ComponentError, match=r"neurons 0\.\.127"):
        run_ablation_sweep(family_model, batch, [Component(0, "neuron", 128)])


def test_batch_without_answers_is_rejected(family_model: Model, batch: Batch) -> None:
    from modlens.errors import TaskError

    empty = Batch(batch.tokens, torch.zeros_like(batch.answer_mask))
    with pytest.raises(TaskError, match="marks no answer tokens"):
        run_ablation_sweep(family_model, empty, parse_components(["L0H0"]))
