"""Mixing SVF experts and full-fine-tuning task vectors: the mixes are what they claim, and the composability frame
reports every method, model and group."""

import pytest
import torch

from modlens.errors import ConfigError
from modlens.models import tiny_model
from modlens.tasks import SyntheticTask, TaskLayout
from modlens.training import FinetuneConfig, apply_scales, finetune
from modlens.training.experts import add_task_vectors, interference, mix_scales, run_composability, task_vector

SHORT = FinetuneConfig(max_steps=4, target_accuracy=1.0, eval_every=2, batch_size=8, lr=1e-2, n_val=16)


@pytest.fixture(scope="module", params=["gpt_neox", "gpt2"])  # gpt2 ties its embeddings: task vectors add once
def experts(request, tokenizer, layout: TaskLayout):
    base = tiny_model(request.param, tokenizer=tokenizer, n_layers=2, d_model=32, n_heads=4, n_ctx=32)
    tasks = {"a": SyntheticTask.from_name("increment∘reverse", layout), "b": SyntheticTask.from_name("sort", layout)}
    svf = {k: finetune(base, t, SHORT, method="svf", progress=False).adapter for k, t in tasks.items()}
    full = {k: finetune(base, t, SHORT, progress=False).model for k, t in tasks.items()}
    return base, tasks, svf, full


def test_mixing_scales_is_linear(experts) -> None:
    _, _, svf, _ = experts
    same = mix_scales([svf["a"], svf["a"]])
    for name, z in svf["a"].items():
        torch.testing.assert_close(same[name], z)
    half = mix_scales([svf["a"], svf["b"]], [0.25, 0.75])
    name = next(iter(svf["a"]))
    torch.testing.assert_close(half[name], 0.25 * svf["a"][name] + 0.75 * svf["b"][name])
    with pytest.raises(ConfigError, match="weights"):
        mix_scales([svf["a"], svf["b"]], [1.0])


def test_one_task_vector_at_weight_one_gives_the_fine_tune_back(experts, layout: TaskLayout) -> None:
    base, tasks, _, full = experts
    rebuilt = add_task_vectors(base, [task_vector(base, full["a"])], [1.0])
    tokens = tasks["a"].sample(8, split="test").tokens
    torch.testing.assert_close(rebuilt.logits(tokens), full["a"].logits(tokens), rtol=1e-5, atol=1e-5)
    untouched = add_task_vectors(base, [task_vector(base, full["a"])], [0.0])
    torch.testing.assert_close(untouched.logits(tokens), base.logits(tokens), rtol=0, atol=0)


def test_composability_frame_and_interference(experts, layout: TaskLayout) -> None:
    base, tasks, svf, full = experts
    batches = {k: t.sample(16, split="test") for k, t in tasks.items()}
    batches["a∘b composite"] = SyntheticTask.from_name("increment∘sort", layout).sample(16, split="test")
    frame = run_composability(base, svf, full, batches)
    assert len(frame) == 2 * 4 * 3  # methods × (base, a, b, mix) × groups
    assert set(frame["model"]) == {"base", "a", "b", "mix"} and frame["answer_accuracy"].between(0, 1).all()
    # a mix of one expert is that expert
    tokens = batches["a"].tokens
    torch.testing.assert_close(
        apply_scales(base, svf["a"]).logits(tokens), apply_scales(base, mix_scales([svf["a"]])).logits(tokens)
    )
    summary = interference(frame)
    assert set(summary["method"]) == {"svf", "full"} and set(summary["expert"]) == {"a", "b"}
    torch.testing.assert_close(
        torch.tensor(summary["interference"].to_numpy()),
        torch.tensor((summary["mixed"] - summary["alone"]).to_numpy()),
    )


def test_composability_needs_the_same_experts(experts) -> None:
    base, tasks, svf, full = experts
    with pytest.raises(ConfigError, match="same experts"):
        run_composability(base, svf, {"a": full["a"]}, {"a": tasks["a"].sample(4)})
