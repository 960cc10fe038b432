"""Synthetic compositional tasks: one fixed sequence layout for primitives and composites alike.

Layout (``n_slots=2``, ``n_digits=4``)::

    <bos> op₁ op₂ x₁ x₂ x₃ x₄ = y₁ y₂ y₃ y₄

Every task fills all operation slots; a primitive leaves the other slots to the identity ``id``, so a
model pretrained on primitives meets composites at exactly the same positions (a shifted layout would
confound any pretraining comparison with a positional mismatch).
"""

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from modlens.errors import TaskError
from modlens.tasks.batch import Batch
from modlens.tasks.operations import IDENTITY, apply_ops, parse_task_name, task_name
from modlens.tasks.vocab import BOS, SEP, SyntheticVocab

Split = Literal["train", "val", "test"]
SPLITS: tuple[Split, ...] = ("train", "val", "test")
# Inputs are assigned to splits by a hash of their digits, so splits are disjoint by input for every task.
_SPLIT_BUCKETS: dict[Split, range] = {"train": range(0, 80), "val": range(80, 90), "test": range(90, 100)}


@dataclass(frozen=True, kw_only=True)
class TaskLayout:
    """The shared sequence layout.

    Attributes:
        n_digits: length of the input (and answer) digit string.
        base: digits are ``0..base-1``; arithmetic operations work modulo ``base``.
        n_slots: operation slots before the input; tasks with fewer operations pad with ``id``.
    """

    n_digits: int = 6
    base: int = 10
    n_slots: int = 2

    def __post_init__(self) -> None:
        if self.n_digits < 2 or self.base < 2 or self.n_slots < 1:
            raise TaskError("layout needs n_digits >= 2, base >= 2 and n_slots >= 1")

    @property
    def vocab(self) -> SyntheticVocab:
        return SyntheticVocab(self.base)

    @property
    def seq_len(self) -> int:
        return 1 + self.n_slots + self.n_digits + 1 + self.n_digits

    @property
    def answer_start(self) -> int:
        return 1 + self.n_slots + self.n_digits + 1

    @property
    def op_positions(self) -> range:
        return range(1, 1 + self.n_slots)


def split_of(digits: np.ndarray, base: int) -> np.ndarray:
    """Split bucket (0-99) of each digit row, from a multiplicative hash of its digits (stable everywhere)."""
    keys = digits.astype(np.uint64) @ (np.uint64(base) ** np.arange(digits.shape[1], dtype=np.uint64))
    mixed = (keys * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(40)
    return (mixed % np.uint64(100)).astype(np.int64)


@dataclass(frozen=True)
class SyntheticTask:
    """A named composition of operations (``"reverse"``, ``"increment∘reverse"``) in a ``TaskLayout``."""

    ops: tuple[str, ...]
    layout: TaskLayout = TaskLayout()

    def __post_init__(self) -> None:
        if len(self.ops) > self.layout.n_slots:
            raise TaskError(
                f"task {self.name!r} has {len(self.ops)} operations but the layout has {self.layout.n_slots} slots"
            )

    @classmethod
    def from_name(cls, name: str, layout: TaskLayout | None = None) -> "SyntheticTask":
        return cls(parse_task_name(name), layout or TaskLayout())

    @property
    def name(self) -> str:
        return task_name(self.ops)

    def sample(self, n: int, *, split: Split = "train", seed: int = 0, label_noise: float = 0.0) -> Batch:
        """Draws ``n`` examples, deterministic in ``seed``.

        Args:
            n: number of sequences.
            split: ``"train"``, ``"val"`` or ``"test"``; inputs of different splits never coincide.
            seed: sampling seed.
            label_noise: probability that an example's answer is replaced by uniformly random digits
                (a corpus-quality knob for pretraining).
        """
        if n <= 0:
            raise TaskError(f"number of examples must be positive, got {n}")
        if split not in SPLITS:
            raise TaskError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
        if not 0.0 <= label_noise <= 1.0:
            raise TaskError(f"label_noise must be in [0, 1], got {label_noise}")
        lay = self.layout
        # Independent streams: the same seed gives the same inputs and slots at any noise rate.
        seq = np.random.SeedSequence([seed, zlib.crc32(self.name.encode()), SPLITS.index(split)])
        inputs_rng, slots_rng, noise_rng = (np.random.default_rng(s) for s in seq.spawn(3))
        digits = _draw_inputs(inputs_rng, n, lay, split)
        answers = apply_ops(self.ops, digits, lay.base)
        noisy = noise_rng.random(n) < label_noise
        answers[noisy] = noise_rng.integers(0, lay.base, size=(int(noisy.sum()), lay.n_digits))
        slots = _slot_ops(slots_rng, n, self.ops, lay.n_slots)
        return _encode(slots, digits, answers, lay, self.name)


def _draw_inputs(rng: np.random.Generator, n: int, lay: TaskLayout, split: Split) -> np.ndarray:
    buckets = _SPLIT_BUCKETS[split]
    found: list[np.ndarray] = []
    have = 0
    while have < n:
        cand = rng.integers(0, lay.base, size=(2 * (n - have) + 16, lay.n_digits))
        b = split_of(cand, lay.base)
        keep = cand[(b >= buckets.start) & (b < buckets.stop)]
        found.append(keep)
        have += len(keep)
    return np.concatenate(found)[:n]


def _slot_ops(rng: np.random.Generator, n: int, ops: tuple[str, ...], n_slots: int) -> list[list[str]]:
    """Operation names per slot for each example; shorter tasks get ``id`` at random slots, order kept."""
    if len(ops) == n_slots:
        return [list(ops)] * n
    rows = []
    for _ in range(n):
        where = np.sort(rng.choice(n_slots, size=len(ops), replace=False))
        row = [IDENTITY] * n_slots
        for slot, op in zip(where, ops, strict=True):
            row[slot] = op
        rows.append(row)
    return rows


def _encode(slots: list[list[str]], digits: np.ndarray, answers: np.ndarray, lay: TaskLayout, name: str) -> Batch:
    vocab = lay.vocab
    n = len(digits)
    tokens = np.empty((n, lay.seq_len), dtype=np.int64)
    tokens[:, 0] = vocab.ids[BOS]
    tokens[:, 1 : 1 + lay.n_slots] = np.array([[vocab.op_id(op) for op in row] for row in slots])
    start = 1 + lay.n_slots
    tokens[:, start : start + lay.n_digits] = digits + vocab.digit_offset
    tokens[:, start + lay.n_digits] = vocab.ids[SEP]
    tokens[:, lay.answer_start :] = answers + vocab.digit_offset
    mask = np.zeros_like(tokens, dtype=bool)
    mask[:, lay.answer_start :] = True
    return Batch(torch.from_numpy(tokens), torch.from_numpy(mask), name)


def sample_mixture(
    tasks: Sequence[SyntheticTask],
    n: int,
    *,
    split: Split = "train",
    seed: int = 0,
    label_noise: float = 0.0,
    weights: Sequence[float] | None = None,
) -> Batch:
    """``n`` examples drawn from several tasks (in proportion to ``weights``), shuffled, deterministic."""
    if not tasks:
        raise TaskError("a mixture needs at least one task")
    rng = np.random.default_rng([seed, len(tasks), SPLITS.index(split)])
    probs = np.asarray(weights if weights is not None else [1.0] * len(tasks), dtype=float)
    counts = rng.multinomial(n, probs / probs.sum())
    parts = [
        t.sample(int(c), split=split, seed=seed * 1_000_003 + i, label_noise=label_noise)
        for i, (t, c) in enumerate(zip(tasks, counts, strict=True))
        if c > 0
    ]
    mixed = Batch.concat(parts, task="mixture")
    return mixed[torch.from_numpy(rng.permutation(n))]


def decode(tokens: torch.Tensor, layout: TaskLayout) -> list[str]:
    """Human-readable strings for token rows (for notebooks and error messages)."""
    words = layout.vocab.tokens
    return [" ".join(words[int(t)] for t in row) for row in tokens]
