"""Ablating a proxy-tuned model's base: the experts' logit offset stays, the base's parts are taken away.

A ``ProxyModel`` (``base + α (tuned expert − untuned expert)``) has no components of its own, but its base does:
ablating them under the experts' offset measures what the base's parts contribute to the proxy-tuned behaviour.
"""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch

from modlens._typing import Float, Tensor, Tokens
from modlens.ablation.hooks import ablate
from modlens.components import Component
from modlens.interventions.replacements import Replacement
from modlens.tasks.batch import Batch
from modlens.training.methods.proxy import ProxyModel


@dataclass(frozen=True, eq=False)
class AblatedProxy:
    """A ``ProxyModel`` whose base runs through its hooked bridge; the experts run as they are."""

    proxy: ProxyModel
    bridge: Any

    @property
    def device(self) -> torch.device:
        return self.proxy.device

    @torch.no_grad()
    def logits(self, tokens: Tokens) -> Float[Tensor, "batch pos d_vocab"]:
        offset = self.proxy.tuned.logits(tokens) - self.proxy.untuned.logits(tokens)
        return self.bridge(tokens.to(self.device)) + self.proxy.alpha * offset.to(self.device)


@contextmanager
def ablate_proxy(
    proxy: ProxyModel,
    components: Sequence[Component],
    *,
    replacement: Replacement = "mean",
    reference: Batch | None = None,
    seed: int = 0,
) -> Iterator[AblatedProxy]:
    """``proxy`` with ``components`` of its base ablated (as ``ablate`` does) inside a ``with`` block; yields an
    object with ``logits`` for the behavioural metrics. The hooks are removed on exit.

    Example:
        >>> with ablate_proxy(proxy, parse_components(["L0.mlp"]), replacement="mean", reference=batch) as ablated:
        ...     accuracy = answer_accuracy(ablated.logits(batch.tokens), batch)
    """
    with ablate(proxy.base, components, replacement=replacement, reference=reference, seed=seed) as bridge:
        yield AblatedProxy(proxy, bridge)
