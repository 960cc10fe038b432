"""Which composites a study fine-tunes on and which it holds out, with held-out pairs functionally new.

Digit-wise maps commute with permutations (``increment∘swap = swap∘increment``) and ``sort`` absorbs any
permutation (``sort∘reverse = sort``). A held-out pair that computes the same function as a trained pair or
a primitive measures memory, not reuse, so the split compares functions on a probe set of inputs.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from modlens.errors import TaskError
from modlens.tasks.operations import IDENTITY, PRIMITIVES, apply_ops, composites, parse_task_name, task_name

PROBE_SEED = 12345


def agreement(a: str, b: str, *, n_digits: int, base: int = 10, n_probe: int = 2000) -> float:
    """Fraction of random probe inputs on which tasks ``a`` and ``b`` give the same final result."""
    probe = np.random.default_rng(PROBE_SEED).integers(0, base, size=(n_probe, n_digits))
    out_a = apply_ops(parse_task_name(a), probe, base)
    out_b = apply_ops(parse_task_name(b), probe, base)
    return float((out_a == out_b).all(axis=1).mean())


@dataclass(frozen=True)
class CompositeSplit:
    """The composites of a study.

    Attributes:
        finetune: pairs the model is fine-tuned on.
        heldout: pairs never trained, each agreeing with no fine-tuned pair, primitive or the identity on
            more than ``max_agreement`` of the probe inputs.
        excluded: pairs in neither list (a functional twin of a held-out pair, or beyond the requested count).
        max_agreement: the threshold the split was made with.
    """

    finetune: tuple[str, ...]
    heldout: tuple[str, ...]
    excluded: tuple[str, ...]
    max_agreement: float


def split_composites(
    *,
    seed: int,
    n_heldout: int,
    n_finetune: int | None = None,
    n_digits: int = 6,
    base: int = 10,
    max_agreement: float = 0.1,
    primitives: Sequence[str] = PRIMITIVES,
    heldout: Sequence[str] = (),
) -> CompositeSplit:
    """Shuffles the composites ``f∘g`` with ``seed``, picks ``n_heldout`` functionally new held-out pairs,
    then fine-tunes on the first ``n_finetune`` (default: all) remaining pairs that are not twins of them.

    ``heldout`` names the held-out pairs instead (``n_heldout`` is then ignored); each must be a composite of
    two distinct primitives that is no functional twin of a primitive.

    Raises:
        TaskError: fewer eligible held-out pairs than ``n_heldout``, a named pair that is no composite or is
            a twin of a primitive, or no pair left to fine-tune on.
    """
    pairs = composites(primitives)
    shuffled = [pairs[i] for i in np.random.default_rng(seed).permutation(len(pairs))]
    references = [*primitives, IDENTITY]

    def twin(a: str, b: str) -> bool:
        return agreement(a, b, n_digits=n_digits, base=base) > max_agreement

    named = [_composite_name(name, pairs) for name in heldout]
    for pair in named:
        close = [ref for ref in references if twin(pair, ref)]
        if close:
            raise TaskError(f"held-out pair {pair!r} computes the same function as {close[0]!r}; name another")
    held: list[str] = list(named)
    for pair in shuffled if not named else ():
        if len(held) == n_heldout:
            break
        if not any(twin(pair, ref) for ref in references):
            held.append(pair)
    if not named and len(held) < n_heldout:
        raise TaskError(
            f"only {len(heldout)} composites differ from every primitive on more than {1 - max_agreement:.0%} of "
            f"inputs; ask for at most that many held-out pairs (n_heldout_composites)"
        )
    pool = [p for p in shuffled if p not in held and not any(twin(p, h) for h in held)]
    finetune = pool if n_finetune is None else pool[:n_finetune]
    if not finetune:
        raise TaskError("no composite is left to fine-tune on; hold out fewer pairs")
    excluded = tuple(p for p in shuffled if p not in held and p not in finetune)
    return CompositeSplit(tuple(finetune), tuple(held), excluded, max_agreement)


def _composite_name(name: str, pairs: Sequence[str]) -> str:
    """The canonical spelling of a named composite (``a.b`` or ``a∘b``), one of ``pairs``."""
    ops = parse_task_name(name)
    canonical = task_name(ops)
    if canonical not in pairs:
        raise TaskError(f"held-out task {name!r} is not a composite of two distinct primitives")
    return canonical
