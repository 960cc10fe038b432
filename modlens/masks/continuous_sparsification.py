"""Continuous sparsification (Lepori, Serre, Pavlick 2023, "Break It Down"): a deterministic, annealed mask.

Training mask ``sigmoid(T * s)`` with the temperature ``T`` rising geometrically from 1 to
``max_temperature`` over the run (the paper anneals per epoch; here per step); the size penalty is
the mean of the training mask; the final mask keeps ``s > 0``.
"""

from dataclasses import dataclass

import torch

from modlens._typing import Tensor


@dataclass(frozen=True, kw_only=True)
class ContinuousSparsification:
    """Settings of continuous sparsification.

    Attributes:
        init: constant initial logit (the paper searches {0.1, 0.05, 0, -0.05}).
        lr: Adam learning rate of the mask logits.
        max_temperature: temperature reached at the last step (the paper uses 200).
    """

    init: float = 0.1
    lr: float = 0.05
    max_temperature: float = 200.0
    n_samples: int = 1

    def temperature(self, step: int, steps: int) -> float:
        return float(self.max_temperature ** (step / max(1, steps - 1)))

    def sample(self, logits: Tensor, step: int, steps: int, generator: torch.Generator) -> Tensor:
        """The training mask, with a leading sample axis of length 1 (the method is deterministic)."""
        return torch.sigmoid(self.temperature(step, steps) * logits)[None]

    def penalty(self, logits: Tensor, step: int, steps: int) -> Tensor:
        """Sum over units of the training mask (the expected number of kept units)."""
        return torch.sigmoid(self.temperature(step, steps) * logits).sum()

    def final(self, logits: Tensor) -> Tensor:
        return logits > 0
