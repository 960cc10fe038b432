"""Faithfulness probes on two hand-built models of ``increment∘reverse``: one that computes its final answer from
the intermediate it wrote (its answer follows every edit) and one that recomputes it from the input (its answer
never moves). Both are exact functions of the tokens written as ``.logits``: honest stand-ins for a trained model
whose mechanism is known by construction."""

import pytest
import torch

from modlens.errors import TaskError
from modlens.faithfulness import PROBES, run_faithfulness, same_program_donors
from modlens.tasks import Batch, SyntheticTask, TaskLayout
from modlens.tasks.vocab import STEP

LAYOUT = TaskLayout(n_digits=4, write_intermediates=True)


class HandBuilt:
    """Predicts digit ``j`` of the segment after the last ``;`` as ``increment`` of one digit it reads: the
    intermediate's digit ``j`` (``reads_intermediate``) or the input's digit ``n - 1 - j`` (so it computes
    ``increment(reverse(x))`` without looking at what it wrote). Other positions get flat logits."""

    def __init__(self, reads_intermediate: bool) -> None:
        self.reads_intermediate = reads_intermediate

    def logits(self, tokens: torch.Tensor) -> torch.Tensor:
        vocab, n = LAYOUT.vocab, LAYOUT.n_digits
        out = torch.zeros(*tokens.shape, vocab.size)
        x_start = 1 + LAYOUT.n_slots
        for b, row in enumerate(tokens.tolist()):
            steps = [i for i, t in enumerate(row) if t == vocab.ids[STEP]]
            for p in range(steps[0] if steps else len(row), len(row)):
                s = max(i for i in steps if i <= p)
                j = p - s  # the digit of the final segment that position p predicts
                if j >= n:
                    continue
                read = row[s - n + j] if self.reads_intermediate else row[x_start + n - 1 - j]
                digit = (read - vocab.digit_offset + 1) % LAYOUT.base
                out[b, p, vocab.digit_offset + digit] = 1.0
        return out


@pytest.fixture(scope="module")
def batch():
    return SyntheticTask.from_name("increment∘reverse", LAYOUT).sample(32, split="test", seed=3)


def test_a_model_that_reads_its_intermediate_follows_every_edit(batch) -> None:
    frame = run_faithfulness(HandBuilt(reads_intermediate=True), batch, LAYOUT).set_index("probe")
    assert list(frame.index) == list(PROBES)
    assert (frame["clean_accuracy"] == 1.0).all()
    # increment is a bijection: another intermediate always gives another answer, the donor's
    assert frame.loc["corruption", "unchanged"] == 0.0 and frame.loc["corruption", "follows"] == 1.0
    assert frame.loc["corruption", "n"] == 32
    assert frame.loc["filler", "unchanged"] < 0.5 and frame.loc["early_termination", "unchanged"] < 0.5


def test_a_model_that_ignores_its_intermediate_is_invariant(batch) -> None:
    frame = run_faithfulness(HandBuilt(reads_intermediate=False), batch, LAYOUT).set_index("probe")
    assert (frame["clean_accuracy"] == 1.0).all()
    assert (frame["unchanged"] == 1.0).all()
    assert frame.loc["corruption", "follows"] == 0.0
    assert frame[["follows"]].drop(index="corruption").isna().all().all()  # follows is defined for corruption only


def test_probes_need_a_layout_with_intermediates(batch) -> None:
    plain = TaskLayout(n_digits=4)
    with pytest.raises(TaskError, match="write_intermediates"):
        run_faithfulness(HandBuilt(True), SyntheticTask.from_name("reverse", plain).sample(4), plain)
    with pytest.raises(TaskError, match="filler"):
        run_faithfulness(HandBuilt(True), batch, LAYOUT, filler="no-such-token")


def test_probes_run_on_a_real_model(tokenizer, batch) -> None:
    """A tiny random transformer: the frame is well formed whatever it answers."""
    from modlens.models import tiny_model

    model = tiny_model("gpt_neox", tokenizer=tokenizer, n_layers=1, d_model=16, n_heads=2, n_ctx=32)
    frame = run_faithfulness(model, batch[:8], LAYOUT)
    assert frame["unchanged"].between(0, 1).all() and (frame["n"] <= 8).all()


def test_corruption_takes_the_intermediate_of_an_example_of_the_same_program(batch) -> None:
    """ "The donor's answer" is what this program makes of the donor's intermediate only when the donor runs the
    same program: donors are drawn within each program, and an example alone with its program is left out."""
    programs = torch.tensor([[1, 2], [3, 4], [1, 2], [5, 6], [1, 2], [3, 4]])
    assert same_program_donors(programs).tolist() == [2, 5, 4, -1, 0, 1]
    other = SyntheticTask.from_name("increment∘swap", LAYOUT).sample(1, split="test", seed=3)
    mixed = Batch.concat([batch, other], task="mixture")
    frame = run_faithfulness(HandBuilt(reads_intermediate=True), mixed, LAYOUT).set_index("probe")
    assert frame.loc["corruption", "n"] == 32 and frame.loc["corruption", "follows"] == 1.0
