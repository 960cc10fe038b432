"""Answer-local metrics need logits only where an answer token is predicted: pick those, and compact the batch."""

import torch

from modlens._typing import Int, Tensor
from modlens.errors import TaskError
from modlens.tasks import Batch
from modlens.tasks.metrics import METRICS, Metric


def is_answer_local(metric: Metric) -> bool:
    """Whether a metric is one of modlens's built-ins, which read logits only at answer-predicting positions."""
    return any(metric is fn for fn in METRICS.values())


def predicting_positions(batch: Batch) -> Int[Tensor, " pos"]:
    """Positions ``p`` whose logits predict an answer token (``answer_mask[:, p + 1]``) in any row.

    Raises:
        TaskError: the batch marks no answer tokens.
    """
    positions = batch.answer_mask[:, 1:].any(dim=0).nonzero().flatten()
    if positions.numel() == 0:
        raise TaskError("the batch marks no answer tokens; an answer metric has nothing to score")
    return positions


def compact_batch(batch: Batch, positions: Tensor) -> Batch:
    """A batch whose pairs ``(p, p + 1)`` for each predicting position ``p`` sit side by side.

    An answer-local metric gives the same value on ``(compact_logits(logits[:, positions]), compact_batch)``
    as on ``(logits, batch)``: each pair's first slot holds the logits at ``p``, its second the answer mask
    at ``p + 1``.
    """
    pos = positions.to(batch.tokens.device)
    tokens = torch.stack([batch.tokens[:, pos], batch.tokens[:, pos + 1]], dim=2).flatten(1)
    answers = batch.answer_mask[:, pos + 1]
    mask = torch.stack([torch.zeros_like(answers), answers], dim=2).flatten(1)
    return Batch(tokens, mask, batch.task)


def compact_logits(logits: Tensor) -> Tensor:
    """Logits at predicting positions ``[..., n, d_vocab]`` interleaved with zeros: ``[..., 2n, d_vocab]``."""
    return torch.stack([logits, torch.zeros_like(logits)], dim=-2).flatten(-3, -2)
