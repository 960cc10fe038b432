"""Synthetic compositional tasks: one fixed sequence layout for primitives and composites alike.

Layout (``n_slots=2``, ``n_digits=4``)::

    <bos> op₁ op₂ x₁ x₂ x₃ x₄ = y₁ y₂ y₃ y₄

Every task fills all operation slots; a primitive leaves the other slots to the identity ``id``, so a
model pretrained on primitives meets composites at exactly the same positions (a shifted layout would
confound any pretraining comparison with a positional mismatch).

With ``write_intermediates`` the model writes every step's result, innermost first, separated by ``;``::

    <bos> op₁ op₂ x₁ x₂ x₃ x₄ = g₁ g₂ g₃ g₄ ; f₁ f₂ f₃ f₄        (g = op₂(x), f = op₁(g))

A task can also teach one step of such a program alone: ``given`` steps show arbitrary digits as their result
(so the next step must read the written intermediate, not recompute from the input), and ``answers`` limits
the targets to some steps (the other results are written but not asked for).
"""

import dataclasses
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase

from modlens.errors import TaskError
from modlens.tasks.batch import Batch
from modlens.tasks.operations import IDENTITY, OPERATIONS, PRIMITIVES, composites, parse_task_name, task_name
from modlens.tasks.rendering import Rendering, render_for
from modlens.tasks.vocab import BOS, SEP, STEP, SyntheticVocab

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
        write_intermediates: the answer is every step's result (one segment per slot, innermost first,
            separated by ``;``), not only the last.
        rendering: the tokenizer's id for each synthetic symbol (``modlens.tasks.rendering``), or ``None`` for
            the synthetic task vocabulary itself; sampled tokens carry the rendered ids. Not a shape of the
            layout: configs and provenance record the other fields, a rendering is recorded on its own.
    """

    n_digits: int = 6
    base: int = 10
    n_slots: int = 2
    write_intermediates: bool = False
    rendering: Rendering | None = None

    def __post_init__(self) -> None:
        if self.n_digits < 2 or self.base < 2 or self.n_slots < 1:
            raise TaskError("layout needs n_digits >= 2, base >= 2 and n_slots >= 1")
        if self.rendering is not None and self.rendering.base != self.base:
            raise TaskError(f"the rendering is for base {self.rendering.base}, the layout's base is {self.base}")

    @classmethod
    def from_record(cls, recorded: Mapping[str, Any]) -> "TaskLayout":
        """The layout a provenance record holds (``dataclasses.asdict`` of one), without its rendering: that
        belongs to a tokenizer and is made again from it (``rendered_for``).

        Raises:
            TypeError: an unknown key. TaskError: invalid values.
        """
        return cls(**{k: v for k, v in recorded.items() if k != "rendering"})

    def as_record(self) -> dict[str, Any]:
        """The layout's shape as provenance records it (``from_record`` reads it back); no rendering."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "rendering"}

    def rendered_for(self, tokenizer: PreTrainedTokenizerBase | None) -> "TaskLayout":
        """This layout written for ``tokenizer`` (``render_for``); unchanged for no tokenizer or the synthetic one.

        Raises:
            TaskError: a symbol the tokenizer cannot write as one token.
        """
        rendering = render_for(tokenizer, self.base) if tokenizer is not None else None
        return dataclasses.replace(self, rendering=rendering)

    @property
    def vocab(self) -> SyntheticVocab:
        """The synthetic symbols (the ids sequences carry only when there is no rendering)."""
        return SyntheticVocab(self.base)

    def token_id(self, symbol: str) -> int:
        """The id sequences of this layout carry for a synthetic symbol (``"="``, ``";"``, ``"<pad>"``, ``"7"``)."""
        synthetic = self.vocab.ids[symbol]
        return synthetic if self.rendering is None else self.rendering.ids[synthetic]

    @property
    def n_vocab(self) -> int:
        """The smallest model vocabulary that holds every id this layout's sequences carry."""
        return self.vocab.size if self.rendering is None else self.rendering.n_vocab

    @property
    def n_segments(self) -> int:
        """Answer segments: one per slot when intermediates are written, else one."""
        return self.n_slots if self.write_intermediates else 1

    @property
    def seq_len(self) -> int:
        return self.answer_start + self.n_segments * (self.n_digits + 1) - 1

    @property
    def answer_start(self) -> int:
        return 1 + self.n_slots + self.n_digits + 1

    def segment(self, index: int) -> slice:
        """Token positions of answer segment ``index`` (0 = the innermost step's result)."""
        if not 0 <= index < self.n_segments:
            raise TaskError(f"segment {index} does not exist; the layout has {self.n_segments}")
        start = self.answer_start + index * (self.n_digits + 1)
        return slice(start, start + self.n_digits)

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
    """A named composition of operations (``"reverse"``, ``"increment∘reverse"``) in a ``TaskLayout``.

    Attributes:
        ops: operations, outermost first.
        layout: the sequence layout.
        given: steps (1 = the innermost) whose result is shown as arbitrary digits instead of computed, and
            is no target; layouts that write intermediates only, and never the last step.
        answers: steps whose results are targets (default: every step not given).
    """

    ops: tuple[str, ...]
    layout: TaskLayout = TaskLayout()
    given: tuple[int, ...] = ()
    answers: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        lay = self.layout
        if len(self.ops) > lay.n_slots:
            raise TaskError(f"task {self.name!r} has {len(self.ops)} operations but the layout has {lay.n_slots} slots")
        if (self.given or self.answers is not None) and not (lay.write_intermediates and len(self.ops) == lay.n_slots):
            raise TaskError(
                f"task {self.name!r} gives or selects step results: it needs every slot filled and a layout that "
                "writes intermediate results"
            )
        steps = range(1, lay.n_segments + 1)
        if any(s not in steps for s in (*self.given, *(self.answers or ()))) or lay.n_segments in self.given:
            raise TaskError(f"task {self.name!r}: steps must lie in 1..{lay.n_segments}, and the last is never given")
        if self.answers is not None and (not self.answers or set(self.answers) & set(self.given)):
            raise TaskError(f"task {self.name!r}: answers must name at least one step that is not given")

    @classmethod
    def from_name(cls, name: str, layout: TaskLayout | None = None) -> "SyntheticTask":
        return cls(parse_task_name(name), layout or TaskLayout())

    @property
    def name(self) -> str:
        """``"f∘g"``, with the steps it gives or asks for when not all: ``"f∘g [given 1]"``, ``"f∘g [answer 1]"``."""
        notes = [f"given {','.join(map(str, self.given))}"] if self.given else []
        notes += [f"answer {','.join(map(str, self.answers))}"] if self.answers is not None else []
        return task_name(self.ops) + (f" [{'; '.join(notes)}]" if notes else "")

    def targets(self) -> tuple[bool, ...]:
        """Per answer segment (innermost first): whether it is a target."""
        steps = range(1, self.layout.n_segments + 1)
        return tuple(s not in self.given and (self.answers is None or s in self.answers) for s in steps)

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
        inputs_rng, slots_rng, noise_rng, given_rng = (np.random.default_rng(s) for s in seq.spawn(4))
        digits = _draw_inputs(inputs_rng, n, lay, split)
        slots = _slot_ops(slots_rng, n, self.ops, lay.n_slots)
        segments = _run_steps(slots, digits, lay, self.given, given_rng, split)
        targets = np.tile(np.array(self.targets()), (n, 1))
        noisy = noise_rng.random(n) < label_noise
        for j in range(lay.n_segments):
            rows = noisy & targets[:, j]
            segments[rows, j] = noise_rng.integers(0, lay.base, size=(int(rows.sum()), lay.n_digits))
        return _encode(slots, digits, segments, targets, lay, self.name)


def _run_steps(
    slots: list[list[str]],
    digits: np.ndarray,
    lay: TaskLayout,
    given: tuple[int, ...],
    given_rng: np.random.Generator,
    split: Split,
) -> np.ndarray:
    """The answer segments ``[n, n_segments, n_digits]``.

    Without intermediates the one segment is the composition's result. With them, segment ``j`` is step
    ``j + 1``'s result (the slots read right to left), or arbitrary digits of the same split for a given
    step. Rows are grouped by their slot pattern (``id`` sits in different slots for different rows).
    """
    n = len(digits)
    segments = np.empty((n, lay.n_segments, lay.n_digits), dtype=np.int64)
    patterns: dict[tuple[str, ...], list[int]] = {}
    for i, row in enumerate(slots):
        patterns.setdefault(tuple(row), []).append(i)
    for pattern, rows in patterns.items():
        current = digits[rows]
        for step, op in enumerate(reversed(pattern), start=1):
            if step in given:
                current = _draw_inputs(given_rng, len(rows), lay, split)
            else:
                current = OPERATIONS[op](current, lay.base)
            if lay.write_intermediates:
                segments[rows, step - 1] = current
        if not lay.write_intermediates:
            segments[rows, 0] = current
    return segments


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


def _encode(
    slots: list[list[str]], digits: np.ndarray, segments: np.ndarray, targets: np.ndarray, lay: TaskLayout, name: str
) -> Batch:
    vocab = lay.vocab
    n = len(digits)
    tokens = np.empty((n, lay.seq_len), dtype=np.int64)
    tokens[:, 0] = vocab.ids[BOS]
    tokens[:, 1 : 1 + lay.n_slots] = np.array([[vocab.op_id(op) for op in row] for row in slots])
    start = 1 + lay.n_slots
    tokens[:, start : start + lay.n_digits] = digits + vocab.digit_offset
    tokens[:, start + lay.n_digits] = vocab.ids[SEP]
    mask = np.zeros_like(tokens, dtype=bool)
    for j in range(lay.n_segments):
        where = lay.segment(j)
        tokens[:, where] = segments[:, j] + vocab.digit_offset
        mask[:, where] = targets[:, j, None]
        if j:
            tokens[:, where.start - 1] = vocab.ids[STEP]
    if lay.rendering is not None:  # one place maps symbols to the tokenizer's ids; positions stay as they are
        tokens = lay.rendering.tokens(tokens)
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


def step_forms(layout: TaskLayout, primitives: Sequence[str] = PRIMITIVES) -> list[SyntheticTask]:
    """Every primitive taught as one step of every two-step program, never the composition itself.

    For each ordered pair ``f∘g`` (``f = g`` included): ``f∘g [answer 1]`` asks only for ``g(x)`` (the inner
    step, with ``f`` waiting in its slot), and ``f∘g [given 1]`` shows arbitrary digits ``z`` as the first
    result and asks for ``f(z)`` (the outer step reads the written intermediate, whatever the inner slot says).
    """
    if not layout.write_intermediates or layout.n_slots != 2:
        raise TaskError("step forms need a two-slot layout that writes intermediate results")
    pairs = [parse_task_name(name) for name in composites(primitives, distinct=False)]
    return [SyntheticTask(ops, layout, answers=(1,)) for ops in pairs] + [
        SyntheticTask(ops, layout, given=(1,)) for ops in pairs
    ]


def decode(tokens: torch.Tensor, layout: TaskLayout) -> list[str]:
    """Human-readable strings for token rows, in synthetic symbols also when rendered (for notebooks and errors)."""
    words = layout.vocab.tokens
    if layout.rendering is not None:
        tokens = layout.rendering.symbols(tokens)
    return [" ".join(words[int(t)] for t in row) for row in tokens]
