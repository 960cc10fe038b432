"""A batch of token sequences with the positions of the answer tokens marked."""

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from modlens._typing import Bool, Int, Tensor
from modlens.errors import TaskError


@dataclass(frozen=True, eq=False)
class Batch:
    """Token sequences (right-padded) and a mask of the answer tokens the model must predict.

    ``answer_mask[b, p]`` is True when ``tokens[b, p]`` is an answer token; the model predicts it from
    position ``p - 1``. Right padding keeps every real token's causal context free of padding, so no
    attention mask is needed.

    Attributes:
        tokens: token ids, ``[batch, pos]``.
        answer_mask: answer-token positions, ``[batch, pos]``; position 0 is never an answer.
        task: the task name the batch was drawn from (informational).
    """

    tokens: Int[Tensor, "batch pos"]
    answer_mask: Bool[Tensor, "batch pos"]
    task: str = ""

    def __post_init__(self) -> None:
        if self.tokens.shape != self.answer_mask.shape:
            raise TaskError(f"tokens {tuple(self.tokens.shape)} and answer_mask {tuple(self.answer_mask.shape)} differ")
        if self.tokens.ndim != 2 or self.tokens.shape[0] == 0:
            raise TaskError("a batch needs at least one sequence of tokens")
        if self.answer_mask[:, 0].any():
            raise TaskError("position 0 cannot hold an answer: nothing precedes it")

    def __len__(self) -> int:
        return int(self.tokens.shape[0])

    @property
    def n_pos(self) -> int:
        return int(self.tokens.shape[1])

    def to(self, device: torch.device | str) -> "Batch":
        return Batch(self.tokens.to(device), self.answer_mask.to(device), self.task)

    def __getitem__(self, index: slice | Tensor) -> "Batch":
        return Batch(self.tokens[index], self.answer_mask[index], self.task)

    def split(self, size: int) -> list["Batch"]:
        """Consecutive sub-batches of at most ``size`` sequences."""
        return [self[i : i + size] for i in range(0, len(self), size)]

    @staticmethod
    def concat(batches: Sequence["Batch"], *, task: str = "") -> "Batch":
        """Stacks batches of equal sequence length."""
        lengths = {b.n_pos for b in batches}
        if len(lengths) != 1:
            raise TaskError(f"cannot concatenate batches of different lengths {sorted(lengths)}")
        return Batch(torch.cat([b.tokens for b in batches]), torch.cat([b.answer_mask for b in batches]), task)
