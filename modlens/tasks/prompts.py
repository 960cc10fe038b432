"""Prompt-file tasks for real models: JSONL lines ``{"prompt": ..., "answer": ...}``."""

import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import PreTrainedTokenizerBase

from modlens.errors import TaskError
from modlens.tasks.batch import Batch


@dataclass(frozen=True)
class PromptExample:
    prompt: str
    answer: str


def load_prompts(path: "str | os.PathLike[str]") -> list[PromptExample]:
    """Reads a JSONL prompt file; blank lines are skipped.

    Raises:
        TaskError: missing file, malformed JSON or missing keys (naming the line), or no rows.
    """
    file = Path(path).expanduser()
    if not file.is_file():
        raise TaskError(f"prompts file {str(file)!r} does not exist")
    examples = []
    for lineno, line in enumerate(file.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise TaskError(f"{file.name} line {lineno}: malformed JSON ({err.msg})") from err
        if (
            not isinstance(row, dict)
            or not isinstance(row.get("prompt"), str)
            or not isinstance(row.get("answer"), str)
        ):
            raise TaskError(f'{file.name} line {lineno}: expected {{"prompt": "...", "answer": "..."}} with strings')
        if not row["answer"]:
            raise TaskError(f"{file.name} line {lineno}: empty answer")
        examples.append(PromptExample(row["prompt"], row["answer"]))
    if not examples:
        raise TaskError(f"prompts file {str(file)!r} has no rows")
    return examples


def encode_prompts(
    examples: list[PromptExample], tokenizer: PreTrainedTokenizerBase, *, n_ctx: int, task: str = "prompts"
) -> Batch:
    """Tokenizes prompt+answer pairs into a right-padded ``Batch`` with the answer tokens marked.

    The prompt is tokenized with the tokenizer's special tokens (a BOS where the model expects one),
    the answer without, and the two are concatenated.

    Raises:
        TaskError: an example longer than the model's context ``n_ctx`` (naming it), or an answer that
            tokenizes to nothing.
    """
    if not examples:
        raise TaskError("no prompts to encode")
    rows: list[tuple[list[int], int]] = []
    for i, ex in enumerate(examples, start=1):
        prompt_ids = list(tokenizer(ex.prompt, add_special_tokens=True)["input_ids"])
        answer_ids = list(tokenizer(ex.answer, add_special_tokens=False)["input_ids"])
        if not answer_ids:
            raise TaskError(f"example {i}: answer {ex.answer!r} tokenizes to nothing")
        if not prompt_ids:
            raise TaskError(f"example {i}: prompt {ex.prompt!r} tokenizes to nothing")
        ids = prompt_ids + answer_ids
        if len(ids) > n_ctx:
            raise TaskError(
                f"example {i} is {len(ids)} tokens long, more than the model's context of {n_ctx}; shorten the prompt"
            )
        rows.append((ids, len(prompt_ids)))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id or 0
    width = max(len(ids) for ids, _ in rows)
    tokens = torch.full((len(rows), width), int(pad), dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.bool)
    for r, (ids, n_prompt) in enumerate(rows):
        tokens[r, : len(ids)] = torch.tensor(ids)
        mask[r, n_prompt : len(ids)] = True
    return Batch(tokens, mask, task)


def load_prompt_batch(
    path: "str | os.PathLike[str]", tokenizer: PreTrainedTokenizerBase | None, *, n_ctx: int
) -> Batch:
    """``load_prompts`` then ``encode_prompts``; the model must come with a tokenizer."""
    if tokenizer is None:
        raise TaskError("this model has no tokenizer, so it cannot read a prompts file; save one beside it")
    return encode_prompts(load_prompts(path), tokenizer, n_ctx=n_ctx, task=Path(path).stem)
