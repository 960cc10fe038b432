"""Chance accuracy of a batch: what guessing uniformly among the answers seen at each position scores."""

import math

from modlens.tasks.batch import Batch


def chance_accuracy(batch: Batch, *, whole_answer: bool = True) -> float:
    """Expected accuracy of uniform guessing among the tokens that occur at each answer position.

    For synthetic tasks of ``n`` digits in base ``b`` this is ``b ** -n`` for whole answers and ``1 / b``
    per token (once the batch shows every digit at every position).

    Args:
        batch: the evaluation batch.
        whole_answer: chance of getting every answer token of an example right (as ``answer_accuracy``
            scores); otherwise the per-token chance (as ``token_accuracy`` scores).
    """
    per_position = []
    for pos in range(1, batch.n_pos):
        rows = batch.answer_mask[:, pos]
        if rows.any():
            per_position.append(1.0 / len(set(batch.tokens[rows, pos].tolist())))
    if not per_position:
        return 0.0
    if whole_answer:
        return math.prod(per_position)
    return sum(per_position) / len(per_position)


def chance_margin(chance: float, n: int) -> float:
    """How far above ``chance`` an accuracy over ``n`` examples must lie to be told from guessing:
    three binomial standard errors, and at least 0.02."""
    return max(0.02, 3 * math.sqrt(chance * (1 - chance) / max(1, n)))


def at_chance(accuracy: float, batch: Batch, *, whole_answer: bool = True) -> bool:
    """Whether ``accuracy`` on ``batch`` is within ``chance_margin`` of ``chance_accuracy`` (or below it)."""
    chance = chance_accuracy(batch, whole_answer=whole_answer)
    return accuracy <= chance + chance_margin(chance, len(batch))
