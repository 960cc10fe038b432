"""Prompt-file tasks for real models: JSONL lines ``{"prompt": ..., "answer": ...}``.

For activation patching a line also names its counterfactual: ``"corrupt_prompt"`` (the corrupted run's
prompt, tokenized to the same length) and ``"wrong_answer"`` (the answer it favours). Both are optional
elsewhere.
"""

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import PreTrainedTokenizerBase

from modlens.errors import TaskError
from modlens.tasks.batch import Batch

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PromptExample:
    prompt: str
    answer: str
    corrupt_prompt: str | None = None
    wrong_answer: str | None = None

    @property
    def has_counterfactual(self) -> bool:
        return self.corrupt_prompt is not None and self.wrong_answer is not None


OPTIONAL_FIELDS = ("corrupt_prompt", "wrong_answer")


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
        for key in OPTIONAL_FIELDS:
            if key in row and (not isinstance(row[key], str) or not row[key]):
                raise TaskError(f"{file.name} line {lineno}: {key} must be a non-empty string")
        examples.append(PromptExample(row["prompt"], row["answer"], *(row.get(k) for k in OPTIONAL_FIELDS)))
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
        prompt_ids, answer_ids = tokenize_example(tokenizer, ex.prompt, ex.answer, example=i)
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


def tokenize_example(
    tokenizer: PreTrainedTokenizerBase, prompt: str, answer: str, *, example: int
) -> tuple[list[int], list[int]]:
    """The prompt's tokens (with the tokenizer's special tokens, e.g. a BOS) and the answer's (without).

    Logs a warning, naming the example, when the answer's first token is not how the tokenizer reads it after the
    prompt (the leading-space trap: ``"Paris"`` after ``"... capital of France is"`` is ``" Paris"``).

    Raises:
        TaskError: a prompt or answer that tokenizes to nothing.
    """
    prompt_ids = list(tokenizer(prompt, add_special_tokens=True)["input_ids"])
    answer_ids = list(tokenizer(answer, add_special_tokens=False)["input_ids"])
    if not answer_ids:
        raise TaskError(f"example {example}: answer {answer!r} tokenizes to nothing")
    if not prompt_ids:
        raise TaskError(f"example {example}: prompt {prompt!r} tokenizes to nothing")
    n = len(prompt_ids)
    joint = list(tokenizer(prompt + answer, add_special_tokens=True)["input_ids"])
    if prompt[-1:].isalnum() and answer[:1].isalnum():
        _warn_answer(example, f"the answer {answer!r} is glued to the last word of its prompt; begin it with a space")
    elif joint[:n] == prompt_ids and joint[n : n + 1] != answer_ids[:1]:
        _warn_answer(
            example,
            f"the answer {answer!r} starts with token {tokenizer.decode(answer_ids[:1])!r}, but after its prompt "
            f"the text reads as {tokenizer.decode(joint[n : n + 1])!r}; check the answer's leading space",
        )
    return prompt_ids, answer_ids


def prepends_bos(tokenizer: PreTrainedTokenizerBase | None) -> bool:
    """Whether the tokenizer puts a BOS token before a prompt (as prompts are encoded here: with its special
    tokens); recorded in outputs so a reader knows what position 0 holds."""
    if tokenizer is None or tokenizer.bos_token_id is None:
        return False
    with_special = tokenizer("x", add_special_tokens=True)["input_ids"]
    return (
        bool(with_special)
        and with_special[0] == tokenizer.bos_token_id != tokenizer("x", add_special_tokens=False)["input_ids"][0]
    )


def _warn_answer(example: int, message: str) -> None:
    log.warning("warning: example %d: %s", example, message)


def load_prompt_batch(
    path: "str | os.PathLike[str]", tokenizer: PreTrainedTokenizerBase | None, *, n_ctx: int
) -> Batch:
    """``load_prompts`` then ``encode_prompts``; the model must come with a tokenizer."""
    return encode_prompts(load_prompts(path), require_tokenizer(tokenizer), n_ctx=n_ctx, task=Path(path).stem)


def require_tokenizer(tokenizer: PreTrainedTokenizerBase | None) -> PreTrainedTokenizerBase:
    """The tokenizer a prompts file needs, or ``TaskError`` when the model came without one."""
    if tokenizer is None:
        raise TaskError("this model has no tokenizer, so it cannot read a prompts file; save one beside it")
    return tokenizer
