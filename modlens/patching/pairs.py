"""Clean/corrupted prompt pairs, tokenized so that the two runs of a pair compare like positions."""

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import PreTrainedTokenizerBase

from modlens._typing import Int, Tensor
from modlens.errors import TaskError
from modlens.tasks.batch import Batch
from modlens.tasks.prompts import PromptExample, load_prompts, require_tokenizer, tokenize_example


@dataclass(frozen=True, eq=False)
class PatchingBatch:
    """The two runs of each pair, row by row, and the two answers the patching metric weighs.

    Row ``i`` of ``clean`` is the clean prompt followed by the first token of the answer, row ``i`` of
    ``corrupt`` the corrupted prompt followed by the same token, both right-padded to one length; the
    answer mask marks that one token, so every metric reads the logits predicting it.

    Attributes:
        clean: the clean run.
        corrupt: the corrupted run (each row as long as its clean row).
        answer: first token of each row's answer, ``[batch]``.
        wrong: first token of each row's wrong answer, ``[batch]``.
        lengths: each row's length in tokens (prompt and answer token), ``[batch]``.
    """

    clean: Batch
    corrupt: Batch
    answer: Int[Tensor, " batch"]
    wrong: Int[Tensor, " batch"]
    lengths: Int[Tensor, " batch"]

    def __len__(self) -> int:
        return len(self.clean)

    @property
    def n_pos(self) -> int:
        return self.clean.n_pos

    @property
    def equal_lengths(self) -> bool:
        """Whether every pair is as long as every other (then a position means the same in each row)."""
        return bool((self.lengths == self.lengths[0]).all())

    def to(self, device: torch.device | str) -> "PatchingBatch":
        return PatchingBatch(
            self.clean.to(device), self.corrupt.to(device), self.answer.to(device), self.wrong.to(device), self.lengths
        )


def encode_pairs(
    examples: list[PromptExample], tokenizer: PreTrainedTokenizerBase, *, n_ctx: int, task: str = "pairs"
) -> PatchingBatch:
    """Tokenizes clean/corrupted pairs (see ``PatchingBatch``); BOS handling follows the tokenizer.

    Raises:
        TaskError: an example without ``corrupt_prompt`` and ``wrong_answer``, a pair whose prompts tokenize
            to different lengths, an answer and wrong answer that start with the same token, or a row
            longer than the model's context (each naming the example).
    """
    if not examples:
        raise TaskError("no prompt pairs to encode")
    rows = []
    for i, ex in enumerate(examples, start=1):
        if ex.corrupt_prompt is None or ex.wrong_answer is None:
            raise TaskError(f"example {i}: patching needs corrupt_prompt and wrong_answer beside prompt and answer")
        clean, answer = tokenize_example(tokenizer, ex.prompt, ex.answer, example=i)
        corrupt, wrong = tokenize_example(tokenizer, ex.corrupt_prompt, ex.wrong_answer, example=i)
        if len(clean) != len(corrupt):
            raise TaskError(
                f"example {i}: the prompt is {len(clean)} tokens and corrupt_prompt {len(corrupt)}; patching "
                "compares like positions, so write pairs that tokenize to the same length"
            )
        if answer[0] == wrong[0]:
            raise TaskError(
                f"example {i}: answer and wrong_answer start with the same token; the logit difference is 0"
            )
        if len(clean) + 1 > n_ctx:
            raise TaskError(f"example {i} is {len(clean) + 1} tokens long, more than the model's context of {n_ctx}")
        rows.append((clean, corrupt, answer[0], wrong[0]))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id or 0
    width = max(len(r[0]) for r in rows) + 1
    tokens = torch.full((2, len(rows), width), int(pad), dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.bool)
    for r, (clean, corrupt, answer_id, _) in enumerate(rows):
        tokens[0, r, : len(clean) + 1] = torch.tensor([*clean, answer_id])
        tokens[1, r, : len(corrupt) + 1] = torch.tensor([*corrupt, answer_id])
        mask[r, len(clean)] = True
    return PatchingBatch(
        clean=Batch(tokens[0], mask, task),
        corrupt=Batch(tokens[1], mask.clone(), f"{task} (corrupted)"),
        answer=torch.tensor([r[2] for r in rows]),
        wrong=torch.tensor([r[3] for r in rows]),
        lengths=torch.tensor([len(r[0]) + 1 for r in rows]),
    )


def load_patching_batch(
    path: "str | os.PathLike[str]", tokenizer: PreTrainedTokenizerBase | None, *, n_ctx: int
) -> PatchingBatch:
    """``load_prompts`` then ``encode_pairs``; the model must come with a tokenizer."""
    return encode_pairs(load_prompts(path), require_tokenizer(tokenizer), n_ctx=n_ctx, task=Path(path).stem)
