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
