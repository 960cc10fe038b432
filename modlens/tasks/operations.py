"""Primitive sequence operations over digits, and their composition. One registry, filled here."""

from collections.abc import Callable, Sequence

import numpy as np

from modlens.errors import TaskError

Operation = Callable[[np.ndarray, int], np.ndarray]
"""Maps digit rows ``[n, length]`` (values in ``0..base-1``) to digit rows of the same shape."""


def _identity(x: np.ndarray, base: int) -> np.ndarray:
    return x.copy()


def _reverse(x: np.ndarray, base: int) -> np.ndarray:
    return x[:, ::-1].copy()


def _increment(x: np.ndarray, base: int) -> np.ndarray:
    return (x + 1) % base


def _double(x: np.ndarray, base: int) -> np.ndarray:
    return (2 * x) % base


def _sort(x: np.ndarray, base: int) -> np.ndarray:
    return np.sort(x, axis=1)


def _rotate(x: np.ndarray, base: int) -> np.ndarray:
    """Rotate left by one: the first digit moves to the end."""
    return np.roll(x, -1, axis=1)


def _swap(x: np.ndarray, base: int) -> np.ndarray:
    """Swap adjacent pairs (0,1), (2,3), ...; an odd last digit stays."""
    out = x.copy()
    even = x.shape[1] - x.shape[1] % 2
    out[:, 0:even:2], out[:, 1:even:2] = x[:, 1:even:2], x[:, 0:even:2]
    return out


IDENTITY = "id"

OPERATIONS: dict[str, Operation] = {
    IDENTITY: _identity,
    "reverse": _reverse,
    "increment": _increment,
    "double": _double,
    "sort": _sort,
    "rotate": _rotate,
    "swap": _swap,
}
"""Every operation by name. The order fixes token ids: append, never reorder."""

PRIMITIVES: tuple[str, ...] = tuple(name for name in OPERATIONS if name != IDENTITY)

COMPOSE = "∘"
_COMPOSE_SPELLINGS = (COMPOSE, ".", "@")


def parse_task_name(name: str) -> tuple[str, ...]:
    """Splits a task name into operations, outermost first: ``"increment∘reverse"`` -> ``("increment", "reverse")``.

    ``"increment.reverse"`` and ``"increment@reverse"`` are ASCII spellings of the same task.

    Raises:
        TaskError: empty name or unknown operation (the message lists the known ones).
    """
    text = name.strip()
    for spelling in _COMPOSE_SPELLINGS[1:]:
        text = text.replace(spelling, COMPOSE)
    parts = tuple(p.strip() for p in text.split(COMPOSE))
    if not text or any(not p for p in parts):
        raise TaskError(f"malformed task name {name!r}; write an operation or a composite like 'increment∘reverse'")
    unknown = [p for p in parts if p not in OPERATIONS]
    if unknown:
        raise TaskError(f"unknown operation {unknown[0]!r} in task {name!r}; known operations: {', '.join(OPERATIONS)}")
    return parts


def task_name(ops: Sequence[str]) -> str:
    """The canonical name of a composition, outermost first."""
    return COMPOSE.join(ops)


def apply_ops(ops: Sequence[str], digits: np.ndarray, base: int) -> np.ndarray:
    """Applies ``ops`` (outermost first) to digit rows: ``f∘g`` computes ``f(g(x))``."""
    out = digits
    for op in reversed(ops):
        out = OPERATIONS[op](out, base)
    return out


def composites(primitives: Sequence[str] = PRIMITIVES, *, distinct: bool = True) -> list[str]:
    """All two-operation composites ``f∘g`` of the given primitives, in a fixed order."""
    return [task_name((f, g)) for f in primitives for g in primitives if not (distinct and f == g)]
