"""Straight-through Gumbel-sigmoid masks (Csordás, van Steenkiste, Schmidhuber 2021, "Are Neural Nets Modular?").

Each step draws several binary masks ``1[sigmoid((l + noise) / tau) > 0.5]`` with logistic noise
``-log(log U1 / log U2)``; the forward pass uses the binary mask and the backward pass the gradient of
the soft one. Logits start at 2 (everything kept); the final mask keeps ``l >= 0``.
"""

from dataclasses import dataclass

import torch

from modlens._typing import Tensor

_EPS = 1e-6


@dataclass(frozen=True, kw_only=True)
class HardConcrete:
    """Settings of the straight-through Gumbel-sigmoid mask.

    Attributes:
        init: constant initial logit (2.0 keeps everything at the start, as in the paper).
        lr: Adam learning rate of the mask logits.
        tau: temperature of the sigmoid.
        n_samples: independent mask samples per batch (the paper uses 4).
    """

    init: float = 2.0
    lr: float = 0.05
    tau: float = 1.0
    n_samples: int = 4

    def sample(self, logits: Tensor, step: int, steps: int, generator: torch.Generator) -> Tensor:
        """``n_samples`` straight-through binary masks, stacked on a leading sample axis."""
        shape = (self.n_samples, *logits.shape)
        u1 = torch.rand(shape, generator=generator).clamp(_EPS, 1 - _EPS).to(logits.device)
        u2 = torch.rand(shape, generator=generator).clamp(_EPS, 1 - _EPS).to(logits.device)
        noise = -torch.log(torch.log(u1) / torch.log(u2))
        soft = torch.sigmoid((logits + noise) / self.tau)
        hard = (soft > 0.5).to(soft.dtype)
        return hard + soft - soft.detach()

    def penalty(self, logits: Tensor, step: int, steps: int) -> Tensor:
        """Sum over units of the keep probability ``sigmoid(l / tau)``.

        The paper penalizes the logits linearly; the bounded form keeps the penalty on the same scale
        as continuous sparsification's (the expected number of kept units), so one ``sparsity`` serves both.
        """
        return torch.sigmoid(logits / self.tau).sum()

    def final(self, logits: Tensor) -> Tensor:
        return logits >= 0
