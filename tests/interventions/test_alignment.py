"""Prompts of different lengths: mean and resample ablation align positions on each row's answer."""

import pytest
import torch
from frames import assert_frames_close  # type: ignore[import-not-found]

from modlens.ablation import run_ablation_loop, run_ablation_sweep
from modlens.components import enumerate_components
from modlens.interventions.alignment import alignment_of, answer_spans
from modlens.interventions.replacements import replacement_fn, resample_indices
from modlens.models import Model
from modlens.tasks import Batch, SyntheticTask, encode_prompts
from modlens.tasks.prompts import PromptExample

PAD = 1000.0


def batch_with(starts: list[int], lengths: list[int], n_pos: int) -> Batch:
    mask = torch.zeros(len(starts), n_pos, dtype=torch.bool)
    for r, (s, n) in enumerate(zip(starts, lengths, strict=True)):
        mask[r, s:n] = True
    return Batch(torch.zeros(len(starts), n_pos, dtype=torch.long), mask)


def slot_values(batch: Batch, offset: list[float]) -> torch.Tensor:
    """Activations ``[row, pos, 2]`` holding ``offset[row] + slot`` at real positions and ``PAD`` after them."""
    start, length = answer_spans(batch)
    p = torch.arange(batch.n_pos)
    slot = (p[None, :] - start[:, None]).float() + torch.tensor(offset)[:, None]
    values = torch.where(p[None, :] < length[:, None], slot, torch.tensor(PAD))
    return values.unsqueeze(-1).expand(-1, -1, 2).clone()


def test_equal_layouts_keep_positions_from_the_start(layout) -> None:
    batch = SyntheticTask.from_name("reverse", layout).sample(8, split="test", seed=0)
    assert alignment_of(batch, batch) is None


def test_mean_is_taken_slot_by_slot_without_padding() -> None:
    reference = batch_with([3, 5, 4], [5, 7, 9], n_pos=9)
    live = batch_with([2, 6], [4, 8], n_pos=9)
    alignment = alignment_of(live, reference)
    assert alignment is not None
    ref_values = slot_values(reference, [0.0, 0.0, 0.0])
    activation = torch.full((2, 9, 2), -7.0)
    out = replacement_fn("mean", ref_values, alignment=alignment)(activation)
    start, length = answer_spans(live)
    for r in range(2):
        for p in range(9):
            slot = p - int(start[r])
            has_reference = -5 <= slot <= 4  # slots the reference rows cover (starts 3, 5, 4; lengths 5, 7, 9)
            expected = float(slot) if p < int(length[r]) and has_reference else -7.0
            assert out[r, p, 0] == pytest.approx(expected), (r, p)
    assert (out != PAD).all()


def test_resample_reads_the_donor_at_the_same_slot() -> None:
    reference = batch_with([3, 5, 4], [5, 7, 9], n_pos=9)
    live = batch_with([2, 6], [4, 8], n_pos=9)
    alignment = alignment_of(live, reference)
    ref_values = slot_values(reference, [0.0, 100.0, 200.0])
    out = replacement_fn("resample", ref_values, seed=1, alignment=alignment)(torch.full((2, 9, 2), -7.0))
    donors = resample_indices(3, 2, seed=1)
    start, length = answer_spans(live)
    ref_start, ref_length = answer_spans(reference)
    for r in range(2):
        donor = int(donors[r])
        for p in range(9):
            source = p - int(start[r]) + int(ref_start[donor])
            inside = 0 <= source < int(ref_length[donor]) and p < int(length[r])
            expected = 100.0 * donor + p - int(start[r]) if inside else -7.0
            assert out[r, p, 0] == pytest.approx(expected), (r, p)


@pytest.mark.parametrize("replacement", ["mean", "resample"])
def test_sweep_equals_the_loop_on_prompts_of_different_lengths(family_model: Model, tokenizer, replacement) -> None:
    examples = [
        PromptExample("<bos> reverse id 1 2 3 4 =", " 4 3 2 1"),
        PromptExample("<bos> sort id 3 1 =", " 1 3"),
        PromptExample("<bos> increment id 2 7 1 =", " 3 8 2"),
        PromptExample("<bos> sort id 9 2 6 5 8 =", " 2"),
    ]
    batch = encode_prompts(examples, tokenizer, n_ctx=32)
    assert alignment_of(batch, batch) is not None
    comps = enumerate_components(family_model.spec, "head") + enumerate_components(family_model.spec, "mlp")
    fast = run_ablation_sweep(family_model, batch, comps, replacement=replacement, seed=2, progress=False)
    slow = run_ablation_loop(family_model, batch, comps, replacement=replacement, seed=2)
    assert_frames_close(fast, slow)
    assert fast["change"].abs().max() > 1e-4
