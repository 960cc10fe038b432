import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from modlens.errors import TaskError
from modlens.tasks import OPERATIONS, PRIMITIVES, apply_ops, composites, parse_task_name, task_name

X = np.array([[3, 1, 4, 1, 5], [9, 2, 6, 5, 3]])


@pytest.mark.parametrize(
    ("op", "expected"),
    [
        ("id", [[3, 1, 4, 1, 5], [9, 2, 6, 5, 3]]),
        ("reverse", [[5, 1, 4, 1, 3], [3, 5, 6, 2, 9]]),
        ("increment", [[4, 2, 5, 2, 6], [0, 3, 7, 6, 4]]),
        ("double", [[6, 2, 8, 2, 0], [8, 4, 2, 0, 6]]),
        ("sort", [[1, 1, 3, 4, 5], [2, 3, 5, 6, 9]]),
        ("rotate", [[1, 4, 1, 5, 3], [2, 6, 5, 3, 9]]),
        ("swap", [[1, 3, 1, 4, 5], [2, 9, 5, 6, 3]]),
    ],
)
def test_primitives_on_hand_computed_cases(op: str, expected: list[list[int]]) -> None:
    np.testing.assert_array_equal(OPERATIONS[op](X, 10), np.array(expected))


def test_composition_applies_inner_operation_first() -> None:
    # increment∘reverse(x) = increment(reverse(x))
    np.testing.assert_array_equal(apply_ops(("increment", "reverse"), X[:1], 10), [[6, 2, 5, 2, 4]])
    # reverse∘rotate differs from rotate∘reverse
    assert not np.array_equal(apply_ops(("reverse", "rotate"), X, 10), apply_ops(("rotate", "reverse"), X, 10))


def test_at_least_six_primitives_and_all_pairs() -> None:
    assert len(PRIMITIVES) >= 6 and "id" not in PRIMITIVES
    pairs = composites()
    assert len(pairs) == len(PRIMITIVES) * (len(PRIMITIVES) - 1)
    assert "increment∘reverse" in pairs and len(set(pairs)) == len(pairs)


@pytest.mark.parametrize(
    "spelling", ["increment∘reverse", "increment.reverse", "increment@reverse", " increment ∘ reverse "]
)
def test_task_name_spellings(spelling: str) -> None:
    assert parse_task_name(spelling) == ("increment", "reverse")
    assert task_name(parse_task_name(spelling)) == "increment∘reverse"


@pytest.mark.parametrize("bad", ["", "reverse∘", "∘sort", "flip", "reverse∘flip"])
def test_bad_task_names_raise_task_error(bad: str) -> None:
    with pytest.raises(TaskError):
        parse_task_name(bad)


@given(st.text(max_size=30))
def test_parser_never_crashes_on_arbitrary_text(text: str) -> None:
    try:
        ops = parse_task_name(text)
    except TaskError:
        return
    assert all(op in OPERATIONS for op in ops)


@given(st.lists(st.integers(0, 9), min_size=2, max_size=8), st.sampled_from(PRIMITIVES))
def test_operations_preserve_shape_and_digit_range(row: list[int], op: str) -> None:
    out = OPERATIONS[op](np.array([row]), 10)
    assert out.shape == (1, len(row)) and out.min() >= 0 and out.max() <= 9
