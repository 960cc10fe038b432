import dataclasses
import importlib

import pytest
import torch

from modlens.errors import ConfigError
from modlens.tasks import SyntheticTask
from modlens.training import FinetuneConfig, finetune


def test_finetune_stops_at_target_and_records_steps(small_trajectory, layout, primitive_tasks) -> None:
    base = small_trajectory.checkpoints[900]
    task = SyntheticTask.from_name("increment∘reverse", layout)
    config = FinetuneConfig(max_steps=400, target_accuracy=0.5, eval_every=20, batch_size=32, lr=3e-3, n_val=128)
    result = finetune(base, task, config, replay=primitive_tasks[:2], progress=False)
    assert result.reached_target
    assert result.steps == int(result.history["step"].iloc[-1]) and result.steps < 400
    assert result.history["val_accuracy"].iloc[-1] >= 0.5
    assert (result.history["val_accuracy"].iloc[:-1] < 0.5).all()
    tokens = task.sample(8, split="test").tokens
    assert not torch.equal(result.model.logits(tokens), base.logits(tokens))
    assert result.model.tokenizer is base.tokenizer


def test_unreached_target_is_reported_not_dropped(small_trajectory, layout) -> None:
    base = small_trajectory.checkpoints[0]
    task = SyntheticTask.from_name("sort∘swap", layout)
    config = FinetuneConfig(max_steps=10, target_accuracy=1.0, eval_every=5, batch_size=8, n_val=64)
    result = finetune(base, task, config, progress=False)
    assert not result.reached_target and result.steps == 10
    assert list(result.history["step"]) == [0, 5, 10]


def test_finetune_on_a_fixed_batch(small_trajectory, layout) -> None:
    batch = SyntheticTask.from_name("reverse", layout).sample(64, split="train", seed=1)
    result = finetune(
        small_trajectory.checkpoints[300],
        batch,
        FinetuneConfig(max_steps=5, eval_every=5, batch_size=8),
        progress=False,
    )
    assert result.steps <= 5 and len(result.history) >= 1


def test_bad_finetune_configs() -> None:
    with pytest.raises(ConfigError, match="max_steps"):
        FinetuneConfig(max_steps=0)
    with pytest.raises(ConfigError, match="target_accuracy"):
        FinetuneConfig(target_accuracy=1.5)


def test_fixed_budget_snapshot_is_the_same_run_after_exactly_that_many_steps(small_trajectory, layout) -> None:
    base = small_trajectory.checkpoints[900]
    task = SyntheticTask.from_name("increment∘reverse", layout)
    common = {"target_accuracy": 0.5, "eval_every": 10, "batch_size": 16, "lr": 3e-3, "n_val": 64}
    both = finetune(base, task, FinetuneConfig(max_steps=200, fixed_steps=60, **common), progress=False)
    assert both.reached_target and both.fixed_budget is not None
    # the same run without the snapshot stops at the same step with the same weights
    alone = finetune(base, task, FinetuneConfig(max_steps=200, **common), progress=False)
    tokens = task.sample(8, split="test").tokens
    assert alone.steps == both.steps
    torch.testing.assert_close(alone.model.logits(tokens), both.model.logits(tokens), rtol=0, atol=0)
    # the fixed arm is the run after exactly 60 steps, whether the target came before or after it
    fixed = finetune(base, task, FinetuneConfig(max_steps=60, **(common | {"target_accuracy": 1.0})), progress=False)
    assert fixed.steps == 60
    torch.testing.assert_close(both.fixed_budget.logits(tokens), fixed.model.logits(tokens), rtol=0, atol=0)


def test_kept_batches_are_the_batches_drawn_afresh(layout, primitive_tasks) -> None:
    finetuning = importlib.import_module("modlens.training.finetune")
    task = SyntheticTask.from_name("increment∘reverse", layout)
    config = FinetuneConfig(batch_size=8, seed=3, replay_fraction=0.3)
    finetuning._STREAMS.clear()
    sampler, _ = finetuning._data(task, primitive_tasks[:2], None, config)
    first = [sampler(step) for step in range(3)]
    again, _ = finetuning._data(task, primitive_tasks[:2], None, config)
    assert again(1) is first[1]  # the next fine-tune of the stream reads the kept batch
    finetuning._STREAMS.clear()
    fresh, _ = finetuning._data(task, primitive_tasks[:2], None, config)
    for step, kept in enumerate(first):
        drawn = fresh(step)
        assert drawn is not kept
        assert torch.equal(drawn.tokens, kept.tokens) and torch.equal(drawn.answer_mask, kept.answer_mask)
    other_seed, _ = finetuning._data(task, primitive_tasks[:2], None, dataclasses.replace(config, seed=4))
    other_replay, _ = finetuning._data(task, primitive_tasks[2:4], None, config)
    assert not torch.equal(other_seed(0).tokens, first[0].tokens)
    assert not torch.equal(other_replay(0).tokens, first[0].tokens)


def test_a_fine_tune_with_kept_batches_is_the_fine_tune_without(small_trajectory, layout, primitive_tasks) -> None:
    finetuning = importlib.import_module("modlens.training.finetune")
    base = small_trajectory.checkpoints[300]
    task = SyntheticTask.from_name("increment∘reverse", layout)
    config = FinetuneConfig(max_steps=12, eval_every=6, batch_size=16, n_val=32, replay_fraction=0.3)

    def tuned() -> dict[str, torch.Tensor]:
        return finetune(base, task, config, replay=primitive_tasks[:2], progress=False).model.hf.state_dict()

    finetuning._STREAMS.clear()
    afresh = tuned()
    assert finetuning._STREAMS  # the batches were kept ...
    kept = tuned()  # ... and this run reads them
    assert afresh.keys() == kept.keys() and all(torch.equal(afresh[k], kept[k]) for k in afresh)
