"""Aligning prompts of different lengths on their answers, so mean and resample ablation compare like positions.

Right-padded prompts of different lengths put the same role (the token before the answer, the subject two
tokens earlier) at different absolute positions, and padding after the shorter ones. Counted from each
row's first answer token instead, position ``p`` of row ``r`` is slot ``p - start_r``; a mean over the
reference takes, for each slot, the rows that have a real token there, and a resampled row reads its donor
at the same slot. Batches whose rows all start their answers at one position and have one length (every
synthetic task) align as before, from the start.
"""

from dataclasses import dataclass

import torch

from modlens._typing import Int, Tensor
from modlens.tasks import Batch


@dataclass(frozen=True, eq=False)
class Alignment:
    """Each row's first answer position and length in tokens (padding excluded), for the reference and live batch."""

    reference_start: Int[Tensor, " ref"]
    reference_length: Int[Tensor, " ref"]
    live_start: Int[Tensor, " batch"]
    live_length: Int[Tensor, " batch"]


def answer_spans(batch: Batch) -> tuple[Int[Tensor, " batch"], Int[Tensor, " batch"]]:
    """Each row's first answer position and its length (one past the last answer token; the whole row without one)."""
    mask = batch.answer_mask.cpu()
    has = mask.any(dim=1)
    positions = torch.arange(batch.n_pos)
    start = torch.where(has, mask.int().argmax(dim=1), 0)
    length = torch.where(has, (positions * mask).amax(dim=1) + 1, batch.n_pos)
    return start, length


def alignment_of(batch: Batch, reference: Batch) -> Alignment | None:
    """The alignment of ``batch`` on ``reference``, or ``None`` when all rows share one answer start and length
    (then positions counted from the start are already aligned)."""
    ref_start, ref_length = answer_spans(reference)
    start, length = answer_spans(batch)
    starts, lengths = torch.cat([ref_start, start]), torch.cat([ref_length, length])
    if bool((starts == starts[0]).all()) and bool((lengths == lengths[0]).all()):
        return None
    return Alignment(ref_start, ref_length, start, length)


def aligned_mean(reference: Tensor, alignment: Alignment, activation: Tensor) -> Tensor:
    """``activation`` with each real position replaced by the reference mean at its slot (rows that have it);
    positions no reference row has, and padding, keep their value."""
    ref_pos = reference.shape[1]
    device = reference.device
    shift = int(alignment.reference_start.max())
    size = ref_pos + shift
    q = torch.arange(ref_pos, device=device)
    start, length = alignment.reference_start.to(device), alignment.reference_length.to(device)
    valid = q[None, :] < length[:, None]
    slots = (q[None, :] - start[:, None] + shift)[valid]
    sums = reference.new_zeros((size, *reference.shape[2:])).index_add_(0, slots, reference[valid].to(reference.dtype))
    counts = torch.zeros(size, device=device).index_add_(0, slots, torch.ones(len(slots), device=device))
    table = sums / counts.clamp(min=1).view(-1, *([1] * (reference.dim() - 2)))
    live_slots, ok = _live_slots(alignment, activation, shift, size)
    ok &= counts[live_slots] > 0
    return _where(ok, table[live_slots], activation)


def aligned_resample(reference: Tensor, alignment: Alignment, donors: Tensor, activation: Tensor) -> Tensor:
    """``activation`` with each real position of row ``r`` replaced by donor row ``donors[r]`` of the reference at
    the same slot; positions the donor lacks, and padding, keep their value."""
    device = reference.device
    ref_pos = reference.shape[1]
    donors = donors.to(device)
    p = torch.arange(activation.shape[1], device=device)
    source = p[None, :] - alignment.live_start.to(device)[:, None] + alignment.reference_start.to(device)[donors, None]
    ok = (source >= 0) & (source < alignment.reference_length.to(device)[donors, None])
    ok &= p[None, :] < alignment.live_length.to(device)[:, None]
    picked = reference[donors[:, None], source.clamp(0, ref_pos - 1)]
    return _where(ok, picked, activation)


def _live_slots(alignment: Alignment, activation: Tensor, shift: int, size: int) -> tuple[Tensor, Tensor]:
    device = activation.device
    p = torch.arange(activation.shape[1], device=device)
    slots = p[None, :] - alignment.live_start.to(device)[:, None] + shift
    ok = (slots >= 0) & (slots < size) & (p[None, :] < alignment.live_length.to(device)[:, None])
    return slots.clamp(0, size - 1), ok


def _where(ok: Tensor, new: Tensor, activation: Tensor) -> Tensor:
    mask = ok.view(*ok.shape, *([1] * (activation.dim() - 2)))
    return torch.where(mask, new.to(activation.dtype), activation)
