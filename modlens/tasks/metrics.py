"""Metrics on a batch's answer tokens. Each takes logits ``[batch, pos, d_vocab]`` and the batch."""

from collections.abc import Callable

import torch
import torch.nn.functional as F

from modlens._typing import Bool, Float, Tensor
from modlens.tasks.batch import Batch

Metric = Callable[[Tensor, Batch], Tensor]
"""``metric(logits, batch) -> scalar tensor``; differentiable ones can be optimised."""


def _answer_logits(logits: Tensor, batch: Batch) -> tuple[Tensor, Tensor, Tensor]:
    """Logits predicting each next token, the next tokens, and the mask of answer targets."""
    return logits[:, :-1], batch.tokens[:, 1:].to(logits.device), batch.answer_mask[:, 1:].to(logits.device)


def token_losses(logits: Float[Tensor, "batch pos d_vocab"], batch: Batch) -> Float[Tensor, "batch pos-1"]:
    """Cross-entropy of every next-token prediction (position p predicts token p+1), zero off the answers."""
    pred, target, mask = _answer_logits(logits, batch)
    ce = F.cross_entropy(pred.flatten(0, 1).float(), target.flatten(), reduction="none").view(target.shape)
    return ce * mask


def loss(logits: Float[Tensor, "batch pos d_vocab"], batch: Batch) -> Float[Tensor, ""]:
    """Mean cross-entropy over answer tokens."""
    mask = batch.answer_mask[:, 1:].to(logits.device)
    return token_losses(logits, batch).sum() / mask.sum().clamp_min(1)


def token_correct(logits: Float[Tensor, "batch pos d_vocab"], batch: Batch) -> Bool[Tensor, "batch pos-1"]:
    """Where the argmax prediction equals the answer token (False off the answer positions)."""
    pred, target, mask = _answer_logits(logits, batch)
    return (pred.argmax(-1) == target) & mask


def token_accuracy(logits: Float[Tensor, "batch pos d_vocab"], batch: Batch) -> Float[Tensor, ""]:
    """Fraction of answer tokens predicted correctly."""
    mask = batch.answer_mask[:, 1:].to(logits.device)
    return token_correct(logits, batch).sum().float() / mask.sum().clamp_min(1)


def example_correct(logits: Float[Tensor, "batch pos d_vocab"], batch: Batch) -> Bool[Tensor, " batch"]:
    """Whether every answer token of each example is predicted correctly."""
    mask = batch.answer_mask[:, 1:].to(logits.device)
    return (token_correct(logits, batch) == mask).all(dim=1)


def answer_accuracy(logits: Float[Tensor, "batch pos d_vocab"], batch: Batch) -> Float[Tensor, ""]:
    """Fraction of examples whose whole answer is correct."""
    return example_correct(logits, batch).float().mean()


def logit_diff(logits: Float[Tensor, "batch pos d_vocab"], batch: Batch) -> Float[Tensor, ""]:
    """Mean over answer tokens of (correct-token logit − best wrong-token logit); > 0 means correct."""
    pred, target, mask = _answer_logits(logits, batch)
    correct = pred.gather(-1, target.unsqueeze(-1)).squeeze(-1)
    wrong = pred.scatter(-1, target.unsqueeze(-1), float("-inf")).amax(-1)
    return ((correct - wrong) * mask).sum() / mask.sum().clamp_min(1)


METRICS: dict[str, Metric] = {
    "loss": loss,
    "token_accuracy": token_accuracy,
    "answer_accuracy": answer_accuracy,
    "logit_diff": logit_diff,
}
"""Metrics by name (CLI and configs)."""


@torch.no_grad()
def evaluate(logits: Tensor, batch: Batch) -> dict[str, float]:
    """Every registered metric on one batch, as plain floats."""
    return {name: float(fn(logits, batch)) for name, fn in METRICS.items()}
