"""The patching metric: the logit difference answer − wrong answer, normalised so corrupted = 0 and clean = 1."""

from dataclasses import dataclass
from typing import ClassVar

import torch

from modlens._typing import Float, Int, Tensor
from modlens.errors import TaskError
from modlens.models import Model
from modlens.patching.pairs import PatchingBatch
from modlens.tasks.batch import Batch


def logit_differences(
    logits: Float[Tensor, "batch pos d_vocab"],
    batch: Batch,
    answer: Int[Tensor, " batch"],
    wrong: Int[Tensor, " batch"],
) -> Float[Tensor, " batch"]:
    """Each row's logit of ``answer`` minus that of ``wrong`` where its (one) answer token is predicted."""
    pred = logits[:, :-1].float()
    mask = batch.answer_mask[:, 1:].to(logits.device)
    index = torch.stack([answer, wrong], dim=-1).to(logits.device)[:, None, :].expand(-1, pred.shape[1], -1)
    both = pred.gather(-1, index)
    return ((both[..., 0] - both[..., 1]) * mask).sum(dim=1)


@dataclass(frozen=True, eq=False)
class NormalisedLogitDiff:
    """``(LD - LD_corrupted) / (LD_clean - LD_corrupted)``, LD the mean logit difference answer − wrong answer.

    0 means the corrupted run's behaviour, 1 the clean run's: in the noising direction (clean run, corrupted
    activations patched in) nothing patched scores 1; in the denoising direction nothing patched scores 0.
    A callable ``metric(logits, batch)`` that reads only the answer-predicting positions.
    """

    answer: Int[Tensor, " batch"]
    wrong: Int[Tensor, " batch"]
    clean_value: float
    corrupt_value: float
    __name__: ClassVar[str] = "normalised_logit_diff"

    def raw(self, logits: Tensor, batch: Batch) -> Tensor:
        """The mean logit difference, not normalised."""
        return logit_differences(logits, batch, self.answer, self.wrong).mean()

    def __call__(self, logits: Tensor, batch: Batch) -> Tensor:
        return (self.raw(logits, batch) - self.corrupt_value) / (self.clean_value - self.corrupt_value)


@torch.no_grad()
def patching_metric(model: Model, pairs: PatchingBatch) -> NormalisedLogitDiff:
    """The normalised metric with its two ends measured on ``model``: the clean and the corrupted run.

    Raises:
        TaskError: the two runs have the same mean logit difference (nothing to normalise by).
    """
    pairs = pairs.to(model.device)
    ends = [
        float(logit_differences(model.logits(b.tokens), b, pairs.answer, pairs.wrong).mean())
        for b in (pairs.clean, pairs.corrupt)
    ]
    if abs(ends[0] - ends[1]) < 1e-6:
        raise TaskError(
            f"the clean and corrupted runs give the same logit difference ({ends[0]:.4g}): the corruption changes "
            "nothing this metric sees; choose pairs whose answers differ"
        )
    return NormalisedLogitDiff(pairs.answer, pairs.wrong, ends[0], ends[1])
