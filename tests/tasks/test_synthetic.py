import numpy as np
import pytest
import torch

from modlens.errors import TaskError
from modlens.tasks import PRIMITIVES, SyntheticTask, TaskLayout, apply_ops, decode, sample_mixture, split_of


def test_layout_is_shared_by_primitives_and_composites(layout: TaskLayout) -> None:
    prim = SyntheticTask.from_name("reverse", layout).sample(64, seed=0)
    comp = SyntheticTask.from_name("increment∘reverse", layout).sample(64, seed=0)
    assert prim.tokens.shape == comp.tokens.shape == (64, layout.seq_len)
    assert torch.equal(prim.answer_mask, comp.answer_mask)
    vocab = layout.vocab
    slot_tokens = prim.tokens[:, list(layout.op_positions)]
    # a primitive fills one slot; the other holds the identity operation, in either position
    assert ((slot_tokens == vocab.op_id("reverse")).sum(1) == 1).all()
    assert ((slot_tokens == vocab.op_id("id")).sum(1) == 1).all()
    placements = set(slot_tokens[:, 0].tolist())
    assert placements == {vocab.op_id("reverse"), vocab.op_id("id")}


def test_sequences_encode_the_operation_result(layout: TaskLayout) -> None:
    task = SyntheticTask.from_name("increment∘reverse", layout)
    batch = task.sample(32, seed=3)
    off = layout.vocab.digit_offset
    start = 1 + layout.n_slots
    digits = batch.tokens[:, start : start + layout.n_digits].numpy() - off
    answers = batch.tokens[:, layout.answer_start :].numpy() - off
    np.testing.assert_array_equal(answers, apply_ops(("increment", "reverse"), digits, layout.base))
    assert batch.answer_mask[:, layout.answer_start :].all() and not batch.answer_mask[:, : layout.answer_start].any()
    text = decode(batch.tokens[:1], layout)[0].split()
    assert text[:3] == ["<bos>", "increment", "reverse"] and text[3 + layout.n_digits] == "="


def test_hand_computed_sequence() -> None:
    layout = TaskLayout(n_digits=3, n_slots=2)
    batch = SyntheticTask.from_name("sort∘double", layout).sample(1, seed=0)
    words = decode(batch.tokens, layout)[0].split()
    x = [int(w) for w in words[3:6]]
    assert words[6] == "=" and [int(w) for w in words[7:]] == sorted((2 * d) % 10 for d in x)


def test_sampling_is_deterministic_in_the_seed(layout: TaskLayout) -> None:
    task = SyntheticTask.from_name("rotate", layout)
    assert torch.equal(task.sample(50, seed=5).tokens, task.sample(50, seed=5).tokens)
    assert not torch.equal(task.sample(50, seed=5).tokens, task.sample(50, seed=6).tokens)


def test_splits_are_disjoint_by_input_across_tasks(layout: TaskLayout) -> None:
    start = 1 + layout.n_slots
    inputs = {}
    for split in ("train", "val", "test"):
        rows = set()
        for name in ("reverse", "sort∘swap"):
            batch = SyntheticTask.from_name(name, layout).sample(2000, split=split, seed=1)
            rows |= {tuple(r) for r in batch.tokens[:, start : start + layout.n_digits].tolist()}
        inputs[split] = rows
    assert not inputs["train"] & inputs["test"]
    assert not inputs["train"] & inputs["val"]
    assert not inputs["val"] & inputs["test"]
    assert len(inputs["test"]) > 100


def test_split_hash_buckets_are_roughly_80_10_10() -> None:
    rng = np.random.default_rng(0)
    buckets = split_of(rng.integers(0, 10, size=(20000, 6)), 10)
    assert buckets.min() >= 0 and buckets.max() < 100
    assert abs((buckets >= 90).mean() - 0.1) < 0.02


def test_label_noise_corrupts_the_requested_fraction(layout: TaskLayout) -> None:
    task = SyntheticTask.from_name("reverse", layout)
    clean = task.sample(4000, seed=2)
    noisy = task.sample(4000, seed=2, label_noise=0.5)
    start = layout.answer_start
    assert torch.equal(clean.tokens[:, :start], noisy.tokens[:, :start])
    changed = (clean.tokens[:, start:] != noisy.tokens[:, start:]).any(1).float().mean().item()
    # a random answer equals the true one with probability 10^-4, so about half change
    assert 0.45 < changed < 0.55


def test_mixture_draws_every_task_in_proportion(layout: TaskLayout) -> None:
    tasks = [SyntheticTask((p,), layout) for p in PRIMITIVES]
    batch = sample_mixture(tasks, 600, seed=0)
    assert len(batch) == 600
    ops = batch.tokens[:, list(layout.op_positions)]
    counts = [int((ops == layout.vocab.op_id(p)).any(1).sum()) for p in PRIMITIVES]
    assert min(counts) > 60 and sum(counts) == 600


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"n": 0}, "positive"), ({"n": 4, "label_noise": 1.5}, "label_noise")],
)
def test_bad_sampling_arguments(layout: TaskLayout, kwargs: dict, message: str) -> None:
    with pytest.raises(TaskError, match=message):
        SyntheticTask.from_name("reverse", layout).sample(**kwargs)


def test_too_many_operations_for_the_layout() -> None:
    with pytest.raises(TaskError, match="slots"):
        SyntheticTask.from_name("reverse∘sort∘swap", TaskLayout(n_slots=2))
