import numpy as np
import pytest
import torch

from modlens.errors import TaskError
from modlens.tasks import SyntheticTask, TaskLayout, apply_ops, decode
from modlens.tasks.synthetic import step_forms

LAYOUT = TaskLayout(n_digits=4, write_intermediates=True)


def digits(batch, where: slice) -> np.ndarray:
    return batch.tokens[:, where].numpy() - LAYOUT.vocab.digit_offset


def test_composite_writes_each_step_innermost_first() -> None:
    batch = SyntheticTask.from_name("increment∘reverse", LAYOUT).sample(32, seed=0)
    x = digits(batch, slice(3, 7))
    np.testing.assert_array_equal(digits(batch, LAYOUT.segment(0)), apply_ops(("reverse",), x, 10))
    np.testing.assert_array_equal(digits(batch, LAYOUT.segment(1)), apply_ops(("increment", "reverse"), x, 10))
    assert batch.tokens.shape == (32, LAYOUT.seq_len) == (32, 17)
    words = decode(batch.tokens[:1], LAYOUT)[0].split()
    assert words[7] == "=" and words[12] == ";"
    # both results are targets, the separator is not
    mask = batch.answer_mask
    assert mask[:, LAYOUT.segment(0)].all() and mask[:, LAYOUT.segment(1)].all() and not mask[:, 12].any()
    assert int(mask.sum()) == 32 * 8


def test_primitive_with_identity_in_either_slot() -> None:
    batch = SyntheticTask.from_name("sort", LAYOUT).sample(64, seed=1)
    x = digits(batch, slice(3, 7))
    first, second = digits(batch, LAYOUT.segment(0)), digits(batch, LAYOUT.segment(1))
    np.testing.assert_array_equal(second, np.sort(x, axis=1))
    inner_sort = batch.tokens[:, 2] == LAYOUT.vocab.op_id("sort")
    assert 0 < int(inner_sort.sum()) < 64
    # sort in the inner slot: the first result is already sorted; in the outer slot the first copies x
    np.testing.assert_array_equal(first[inner_sort.numpy()], np.sort(x[inner_sort.numpy()], axis=1))
    np.testing.assert_array_equal(first[~inner_sort.numpy()], x[~inner_sort.numpy()])


def test_given_step_shows_arbitrary_digits_and_asks_for_the_next() -> None:
    task = SyntheticTask(("reverse", "sort"), LAYOUT, given=(1,))
    batch = task.sample(200, seed=2)
    x, shown, answer = digits(batch, slice(3, 7)), digits(batch, LAYOUT.segment(0)), digits(batch, LAYOUT.segment(1))
    np.testing.assert_array_equal(answer, shown[:, ::-1])
    assert (shown != np.sort(x, axis=1)).any(axis=1).mean() > 0.9  # not the inner step's result
    assert not batch.answer_mask[:, LAYOUT.segment(0)].any() and batch.answer_mask[:, LAYOUT.segment(1)].all()
    assert task.name == "reverse∘sort [given 1]"


def test_answer_selects_the_steps_that_are_targets() -> None:
    task = SyntheticTask(("double", "rotate"), LAYOUT, answers=(1,))
    batch = task.sample(16, seed=3)
    x = digits(batch, slice(3, 7))
    np.testing.assert_array_equal(digits(batch, LAYOUT.segment(0)), np.roll(x, -1, axis=1))
    assert batch.answer_mask[:, LAYOUT.segment(0)].all() and not batch.answer_mask[:, LAYOUT.segment(1)].any()


def test_step_forms_teach_every_step_never_the_composition() -> None:
    forms = step_forms(LAYOUT)
    assert len(forms) == 2 * 36
    for form in forms:
        targets = form.targets()
        # exactly one step is asked for: the inner on the input, or the outer on a given intermediate
        assert sum(targets) == 1
        assert (form.given == (1,)) == targets[1]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"ops": ("reverse", "sort"), "layout": TaskLayout(n_digits=4), "given": (1,)}, "writes intermediate"),
        ({"ops": ("reverse",), "layout": LAYOUT, "given": (1,)}, "every slot"),
        ({"ops": ("reverse", "sort"), "layout": LAYOUT, "given": (2,)}, "last is never given"),
        ({"ops": ("reverse", "sort"), "layout": LAYOUT, "given": (1,), "answers": (1,)}, "not given"),
    ],
)
def test_bad_step_options(kwargs: dict, message: str) -> None:
    with pytest.raises(TaskError, match=message):
        SyntheticTask(**kwargs)


def test_label_noise_replaces_only_targets() -> None:
    task = SyntheticTask(("reverse", "sort"), LAYOUT, given=(1,))
    clean, noisy = task.sample(2000, seed=4), task.sample(2000, seed=4, label_noise=0.5)
    assert torch.equal(clean.tokens[:, : LAYOUT.segment(1).start], noisy.tokens[:, : LAYOUT.segment(1).start])
    changed = (clean.tokens != noisy.tokens).any(1).float().mean().item()
    assert 0.45 < changed < 0.55
