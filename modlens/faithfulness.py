"""Reasoning-faithfulness probes: does the final answer depend on the intermediate result the model wrote?

On layouts that write intermediates (``<bos> f g x = g(x) ; f(g(x))``) the final answer is decoded greedily three
more times, after editing the intermediate: early termination (the intermediate cut out), filler substitution (its
tokens replaced by a filler token) and corruption (another input's intermediate in its place). A model that
truly uses its intermediate changes its answer, and under corruption gives the answer it gives the other input.
"""

from typing import Protocol, runtime_checkable

import pandas as pd
import torch

from modlens._typing import Float, Int, Tensor, Tokens
from modlens.errors import TaskError
from modlens.tasks.batch import Batch
from modlens.tasks.synthetic import TaskLayout
from modlens.tasks.vocab import PAD, STEP

PROBES = ("early_termination", "filler", "corruption")
"""The probes, in the order of ``run_faithfulness``'s rows."""


@runtime_checkable
class LogitModel(Protocol):
    """Anything with next-token logits: a ``Model``, a ``ProxyModel``, or a hand-built function in a test."""

    def logits(self, tokens: Tokens) -> Float[Tensor, "batch pos d_vocab"]: ...


@torch.no_grad()
def greedy_answer(model: LogitModel, prefix: Tokens, n: int) -> Int[Tensor, "batch n"]:
    """The ``n`` tokens ``model`` writes after ``prefix``, each the argmax given all before it (on the CPU)."""
    seq = prefix.cpu()
    for _ in range(n):
        step = model.logits(seq)[:, -1].argmax(-1).cpu()
        seq = torch.cat([seq, step[:, None]], dim=1)
    return seq[:, -n:]


def same_program_donors(programs: Tensor) -> Tensor:
    """For each row, the index of the next row with the same program (operation tokens), cyclically within its
    program; ``-1`` for a row alone with its program."""
    donors = torch.full((len(programs),), -1, dtype=torch.long)
    _, group = torch.unique(programs, dim=0, return_inverse=True)
    for g in group.unique():
        rows = torch.nonzero(group == g).flatten()
        if len(rows) > 1:
            donors[rows] = torch.roll(rows, -1)
    return donors


@torch.no_grad()
def run_faithfulness(model: LogitModel, batch: Batch, layout: TaskLayout, *, filler: str = PAD) -> pd.DataFrame:
    """How often the final answer survives each edit of the written intermediate result(s).

    The clean answer is decoded after the batch's own (teacher-forced) intermediate. Corruption takes each
    example's intermediate from the next example of the same program (the same operations, cyclically among the
    batch's examples of that program, so "the donor's answer" is the one this program gives that intermediate);
    examples alone with their program, or whose donor has the same
    intermediate are left out of that probe (the edit would change nothing).

    Args:
        model: anything with ``.logits(tokens)``.
        batch: sequences of a layout that writes intermediates (e.g. a composite task ``f∘g``).
        layout: that layout.
        filler: the synthetic symbol (written as the layout renders it) that replaces every intermediate token in
            filler substitution.

    Returns:
        One row per probe (``PROBES``): ``probe``, ``n`` (examples probed), ``unchanged`` (share whose final answer
        equals the clean one), ``follows`` (corruption only, else NaN: share whose answer equals the model's clean
        answer for the donor, i.e. follows the intermediate it was given), and ``clean_accuracy`` (share of clean
        final answers that are right, the same in every row).

    Raises:
        TaskError: a layout without intermediates, or a batch not of that layout, or an unknown filler token.
    """
    if not layout.write_intermediates or layout.n_segments < 2:
        raise TaskError("faithfulness probes need a layout that writes intermediate results (write_intermediates)")
    if batch.n_pos != layout.seq_len:
        raise TaskError(f"batch sequences have {batch.n_pos} positions; the layout's have {layout.seq_len}")
    if filler not in layout.vocab.ids:
        raise TaskError(f"filler {filler!r} is no token of the layout's vocabulary")
    tokens = batch.tokens.cpu()
    final = layout.segment(layout.n_segments - 1)
    inter = slice(layout.answer_start, final.start - 1)  # every intermediate segment and the separators between
    n_digits = layout.n_digits
    prefix = tokens[:, : final.start]
    clean = greedy_answer(model, prefix, n_digits)
    clean_accuracy = float((clean == tokens[:, final]).all(1).float().mean())

    step = torch.full((len(tokens), 1), layout.token_id(STEP), dtype=tokens.dtype)
    cut = torch.cat([tokens[:, : layout.answer_start], step], dim=1)
    filled = prefix.clone()
    filled[:, inter] = layout.token_id(filler)
    donor = same_program_donors(tokens[:, 1 : 1 + layout.n_slots])
    differs = (donor >= 0) & (tokens[:, inter] != tokens[donor.clamp(min=0), inter]).any(1)
    donor = donor.clamp(min=0)
    corrupted = prefix.clone()
    corrupted[:, inter] = tokens[donor, inter]

    rows = []
    for probe, edited, keep in (
        ("early_termination", cut, torch.ones(len(tokens), dtype=torch.bool)),
        ("filler", filled, torch.ones(len(tokens), dtype=torch.bool)),
        ("corruption", corrupted[differs], differs),
    ):
        answer = greedy_answer(model, edited, n_digits) if len(edited) else clean[:0]
        unchanged = (answer == clean[keep]).all(1).float()
        follows = (answer == clean[donor][keep]).all(1).float() if probe == "corruption" else None
        rows.append(
            {
                "probe": probe,
                "n": int(keep.sum()),
                "unchanged": float(unchanged.mean()) if len(unchanged) else float("nan"),
                "follows": float(follows.mean()) if follows is not None and len(follows) else float("nan"),
                "clean_accuracy": clean_accuracy,
            }
        )
    return pd.DataFrame(rows)
