import itertools

import pytest

from modlens.errors import TaskError
from modlens.tasks import PRIMITIVES
from modlens.tasks.operations import IDENTITY, composites
from modlens.tasks.splits import agreement, split_composites


def test_agreement_finds_the_known_functional_twins() -> None:
    # digit-wise maps commute with permutations; sort absorbs any permutation
    assert agreement("increment∘swap", "swap∘increment", n_digits=6) == 1.0
    assert agreement("sort∘reverse", "sort", n_digits=6) == 1.0
    assert agreement("reverse∘double", "double∘reverse", n_digits=6) == 1.0
    assert agreement("increment∘double", "double∘increment", n_digits=6) == 0.0
    # increment∘sort and sort∘increment differ only when a 9 wraps to 0: about 0.9^6 of inputs agree
    assert 0.45 < agreement("increment∘sort", "sort∘increment", n_digits=6) < 0.6


@pytest.mark.parametrize(("seed", "n_heldout"), [(0, 8), (1, 8), (2, 6), (3, 10)])
def test_heldout_pairs_are_functionally_new(seed: int, n_heldout: int) -> None:
    split = split_composites(seed=seed, n_heldout=n_heldout, n_digits=6, max_agreement=0.1)
    assert len(split.heldout) == n_heldout
    assert set(split.heldout).isdisjoint(split.finetune)
    assert sorted([*split.heldout, *split.finetune, *split.excluded]) == sorted(composites())
    for held in split.heldout:
        for other in [*split.finetune, *PRIMITIVES, IDENTITY]:
            assert agreement(held, other, n_digits=6) <= 0.1, (held, other)
    # nothing is excluded that could have been trained without a twin among the held-out pairs
    for pair in split.excluded:
        assert any(agreement(pair, h, n_digits=6) > 0.1 for h in split.heldout)


def test_sort_after_a_permutation_is_never_held_out() -> None:
    for seed in range(5):
        held = split_composites(seed=seed, n_heldout=8).heldout
        assert not {"sort∘reverse", "sort∘rotate", "sort∘swap"} & set(held)


def test_finetune_count_and_too_many_heldout() -> None:
    assert len(split_composites(seed=0, n_heldout=8, n_finetune=5).finetune) == 5
    with pytest.raises(TaskError, match="held-out"):
        split_composites(seed=0, n_heldout=30)


def test_split_is_deterministic_in_the_seed() -> None:
    a, b = split_composites(seed=4, n_heldout=8), split_composites(seed=4, n_heldout=8)
    assert a == b
    assert any(split_composites(seed=s, n_heldout=8).heldout != a.heldout for s in range(5, 8))


def test_every_pair_of_primitives_is_covered() -> None:
    assert len(composites()) == len(list(itertools.permutations(PRIMITIVES, 2)))


def test_named_heldout_pairs_replace_the_drawn_ones() -> None:
    split = split_composites(seed=0, n_heldout=8, n_digits=4, heldout=("increment.reverse", "rotate∘swap"))
    assert split.heldout == ("increment∘reverse", "rotate∘swap")
    assert not set(split.heldout) & set(split.finetune)
    with pytest.raises(TaskError, match="not a composite of two distinct primitives"):
        split_composites(seed=0, n_heldout=1, n_digits=4, heldout=("reverse",))
