"""The synthetic tasks rendered for a model's own tokenizer: one text token per synthetic symbol.

Every symbol (digit, operation name, ``=``, ``;``, BOS, PAD) becomes exactly one token of the tokenizer, so a
rendered sequence has the layout's length and every position (answer segments, intermediates, separators) where
the synthetic sequence has it: masks, step batches and faithfulness probes work unchanged on rendered batches.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase

from modlens.errors import TaskError
from modlens.tasks.operations import OPERATIONS
from modlens.tasks.vocab import BOS, EOS, PAD, SEP, STEP, UNK, SyntheticVocab

_ALIASES = {"reverse": "rev", "increment": "inc", "double": "dbl", "rotate": "rot", "swap": "swp"}
"""Short spellings tried when an operation's name is no single token of a tokenizer."""


@dataclass(frozen=True)
class Rendering:
    """How the synthetic symbols are written for one tokenizer.

    Attributes:
        ids: the tokenizer's token id for each synthetic vocabulary id (index = synthetic id).
        texts: the string chosen for each synthetic symbol (same order), for provenance.
    """

    ids: tuple[int, ...]
    texts: tuple[str, ...]

    def tokens(self, synthetic: np.ndarray) -> np.ndarray:
        """Synthetic token ids mapped to the tokenizer's ids (same shape)."""
        return np.asarray(self.ids, dtype=np.int64)[synthetic]

    def symbols(self, tokens: torch.Tensor) -> torch.Tensor:
        """Tokenizer ids mapped back to synthetic ids (same shape); an id no symbol renders to becomes ``<unk>``.

        Where specials share a text token (BOS, PAD and EOS may all be GPT-2's ``<|endoftext|>``), it reads as BOS.
        """
        synthetic = SyntheticVocab(self.base)
        table = torch.full((self.n_vocab,), synthetic.ids[UNK], dtype=torch.long)
        for sid, tid in reversed(list(enumerate(self.ids))):
            table[tid] = sid
        table[self.ids[synthetic.ids[BOS]]] = synthetic.ids[BOS]
        flat = tokens.cpu().long()
        inside = (flat >= 0) & (flat < self.n_vocab)
        return torch.where(inside, table[flat.clamp(0, self.n_vocab - 1)], table.new_tensor(synthetic.ids[UNK]))

    @property
    def n_vocab(self) -> int:
        """The smallest model vocabulary that holds every rendered id."""
        return max(self.ids) + 1

    @property
    def base(self) -> int:
        """The digit base of the tasks rendered (every symbol but the digits is there for any base)."""
        return len(self.ids) - len(SyntheticVocab(0).tokens)

    def as_dict(self) -> dict[str, dict[str, Any]]:
        """Synthetic symbol -> ``{"text": ..., "id": ...}``, for the record a study writes."""
        words = SyntheticVocab(self.base).tokens
        return {w: {"text": t, "id": i} for w, t, i in zip(words, self.texts, self.ids, strict=True)}


def is_synthetic(tokenizer: PreTrainedTokenizerBase, base: int) -> bool:
    """Whether ``tokenizer`` reads every synthetic symbol at its synthetic id (a model trained on the tasks)."""
    vocab = dict(tokenizer.get_vocab())
    return all(vocab.get(token) == i for token, i in SyntheticVocab(base).ids.items())


def render_for(tokenizer: PreTrainedTokenizerBase, base: int) -> Rendering | None:
    """The synthetic tasks of digit base ``base`` written for ``tokenizer``; ``None`` when it already is the
    synthetic task vocabulary.

    Each symbol takes the first of its candidate strings that is one token of the tokenizer: encoded without
    special tokens to a single id, or else a vocabulary entry itself (Llama's sentencepiece splits ``" 0"`` into
    two pieces but has the piece ``"0"``). Candidates: digits ``" 0"``, ``"0"``; operations ``" reverse"``,
    ``"reverse"``, a short alias (``" rev"``, ``"rev"``); ``=`` and ``;`` with and without a leading space; BOS the
    tokenizer's BOS, else its EOS; PAD its PAD, else EOS, else a space. One token per symbol keeps every position
    of the layout: answer masks, step batches and intermediate edits address rendered sequences as they address
    synthetic ones. Digits, operations and separators get pairwise distinct ids (answers are compared by id), and
    differ from BOS and PAD; a candidate whose id a symbol before it took is passed over.

    Raises:
        TaskError: a symbol with no free single-token rendering (one line naming it and what was tried).
    """
    if is_synthetic(tokenizer, base):
        return None
    vocab = dict(tokenizer.get_vocab())
    synthetic = SyntheticVocab(base)
    taken: dict[int, str] = {}
    chosen: dict[str, tuple[str, int]] = {}

    def choose(symbol: str, candidates: Sequence[str | None], *, distinct: bool = True) -> None:
        tried = [c for c in dict.fromkeys(candidates) if c is not None]
        for text in tried:
            tid = _single_id(tokenizer, vocab, text)
            if tid is not None and (tid not in taken or not distinct):
                chosen[symbol] = (text, tid)
                if distinct:
                    taken[tid] = symbol
                return
        shown = ", ".join(repr(t) for t in tried) or "nothing (the tokenizer has no such special token)"
        single = any(_single_id(tokenizer, vocab, t) is not None for t in tried)
        clash = " free of the ids other symbols took" if single else ""
        raise TaskError(f"cannot render the synthetic symbol {symbol!r} as one token{clash}; tried {shown}")

    for digit in synthetic.tokens[synthetic.digit_offset : synthetic.digit_offset + base]:
        choose(digit, [f" {digit}", digit])
    for sep in (SEP, STEP):
        choose(sep, [f" {sep}", sep])
    for op in OPERATIONS:
        alias = _ALIASES.get(op, op)
        choose(op, [f" {op}", op, f" {alias}", alias])
    eos = tokenizer.eos_token
    choose(BOS, [tokenizer.bos_token, eos, BOS])
    bos_id = chosen[BOS][1]
    taken.pop(bos_id)  # PAD may share BOS's token (GPT-2's <|endoftext|> is both); neither is ever an answer
    choose(PAD, [tokenizer.pad_token, eos, PAD, " "])
    # EOS and UNK never occur in a sampled sequence; they take the tokenizer's own or BOS's / PAD's token
    choose(EOS, [eos, EOS, chosen[BOS][0]], distinct=False)
    choose(UNK, [tokenizer.unk_token, UNK, chosen[PAD][0]], distinct=False)
    return Rendering(
        ids=tuple(chosen[w][1] for w in synthetic.tokens), texts=tuple(chosen[w][0] for w in synthetic.tokens)
    )


def _single_id(tokenizer: PreTrainedTokenizerBase, vocab: dict[str, int], text: str) -> int | None:
    """The one id ``text`` is read as, or None; a word-level tokenizer's ``<unk>`` for an unknown word is no
    rendering of it."""
    ids = tokenizer.encode(text, add_special_tokens=False)
    if len(ids) == 1 and (ids[0] != tokenizer.unk_token_id or text == tokenizer.unk_token):
        return int(ids[0])
    return vocab.get(text)
