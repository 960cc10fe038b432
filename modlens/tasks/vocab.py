"""The token vocabulary of the synthetic tasks, and a Hugging Face tokenizer for it."""

import functools
from dataclasses import dataclass

from transformers import PreTrainedTokenizerFast

from modlens.tasks.operations import OPERATIONS

PAD, BOS, EOS, UNK, SEP = "<pad>", "<bos>", "<eos>", "<unk>", "="
STEP = ";"
"""Separates the result of one operation from the next when a layout writes intermediate results."""


@dataclass(frozen=True)
class SyntheticVocab:
    """Token ids for specials, digits ``0..base-1``, operation names (in registry order), then the step
    separator (appended, so earlier ids never move)."""

    base: int = 10

    @functools.cached_property
    def tokens(self) -> tuple[str, ...]:
        return (PAD, BOS, EOS, UNK, SEP, *(str(d) for d in range(self.base)), *OPERATIONS, STEP)

    @functools.cached_property
    def ids(self) -> dict[str, int]:
        return {tok: i for i, tok in enumerate(self.tokens)}

    @property
    def size(self) -> int:
        return len(self.tokens)

    @property
    def digit_offset(self) -> int:
        return self.ids["0"]

    def op_id(self, op: str) -> int:
        return self.ids[op]

    def tokenizer(self) -> PreTrainedTokenizerFast:
        """A word-level tokenizer over this vocabulary (whitespace-separated tokens)."""
        from tokenizers import Tokenizer, models, pre_tokenizers

        tk = Tokenizer(models.WordLevel(vocab=dict(self.ids), unk_token=UNK))
        tk.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
        return PreTrainedTokenizerFast(tokenizer_object=tk, bos_token=BOS, eos_token=EOS, pad_token=PAD, unk_token=UNK)
