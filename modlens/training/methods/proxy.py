"""Proxy-tuning (Liu et al. 2024): the base's logits plus what fine-tuning changed in a small expert's logits,
``base + α (tuned expert − untuned expert)`` at every position; the base's weights never change."""

from dataclasses import dataclass, field
from typing import Any, ClassVar, NoReturn

import torch
from torch import nn

from modlens._typing import Float, Tensor, Tokens
from modlens.errors import ConfigError, ModlensError
from modlens.models.model import Model
from modlens.training.loop import trainable_copy
from modlens.training.methods.base import Method

NO_WEIGHTS = (
    "a proxy-tuned model is a sum of three models' logits, not one network: it has no weights, activations or "
    "components of its own, so weight drift, activation drift, masks and ablations of its parts are undefined "
    "(report NaN with this reason; its base and experts can each be analysed as Models)"
)
"""Why mechanistic metrics are undefined for a ``ProxyModel`` (the reason to record beside their NaN)."""


class NoWeightsError(ModlensError):
    """A mechanistic analysis asked for the weights or activations of a model-like object that has none."""


@dataclass(frozen=True, eq=False)
class ProxyModel:
    """A decoding-time ensemble: ``logits(tokens) = base + alpha * (tuned − untuned)``.

    It offers what behavioural code uses (``logits``, ``tokenizer``, ``device``, ``source``); ``hf`` and ``bridge``
    raise ``NoWeightsError`` naming ``NO_WEIGHTS`` instead of silently handing out the base's network.

    Attributes:
        base: the large model, untouched.
        tuned: the fine-tuned expert.
        untuned: the expert before fine-tuning (the anti-expert).
        alpha: strength of the logit offset.
    """

    base: Model
    tuned: Model
    untuned: Model
    alpha: float = 1.0
    source: str = field(default="<proxy>")

    def __post_init__(self) -> None:
        vocab = {m.spec.d_vocab for m in (self.base, self.tuned, self.untuned)}
        if len(vocab) != 1:
            raise ConfigError(f"proxy-tuning needs one vocabulary for base and experts, got sizes {sorted(vocab)}")

    reason: ClassVar[str] = NO_WEIGHTS

    @property
    def tokenizer(self) -> Any:
        return self.base.tokenizer

    @property
    def device(self) -> torch.device:
        return self.base.device

    @torch.no_grad()
    def logits(self, tokens: Tokens) -> Float[Tensor, "batch pos d_vocab"]:
        """The base's logits shifted by the experts' difference, on the base's device."""
        offset = self.tuned.logits(tokens) - self.untuned.logits(tokens)
        return self.base.logits(tokens) + self.alpha * offset.to(self.device)

    @property
    def hf(self) -> NoReturn:
        raise NoWeightsError(NO_WEIGHTS)

    @property
    def bridge(self) -> NoReturn:
        raise NoWeightsError(NO_WEIGHTS)


@dataclass(frozen=True)
class Proxy(Method):
    """Fully fine-tunes a copy of ``expert`` so that ``base + alpha (tuned − expert)`` meets the target (the
    validation check judges the proxy's logits, not the expert's); returns a ``ProxyModel``. The base is only run.

    Attributes:
        expert: the small model to tune (same vocabulary as the base); required.
        alpha: strength of the logit offset.
    """

    name: ClassVar[str] = "proxy"
    expert: Model | None = None
    alpha: float = 1.0

    def __post_init__(self) -> None:
        if self.expert is None:
            raise ConfigError("proxy-tuning needs a small expert model: pass method=Proxy(expert=...)")

    def _expert(self) -> Model:
        assert self.expert is not None  # __post_init__ refuses None
        return self.expert

    def trainable(self, model: Model) -> nn.Module:
        ProxyModel(model, self._expert(), self._expert())  # the vocabulary check, before any training
        return trainable_copy(self._expert().hf)

    def logits(self, model: Model, module: nn.Module, tokens: torch.Tensor) -> torch.Tensor:
        expert = self._expert()
        offset = module(tokens.to(expert.device)).logits - expert.logits(tokens)
        return model.logits(tokens) + self.alpha * offset.to(model.device)

    def result(self, model: Model, snapshot: nn.Module, source: str) -> ProxyModel:
        expert = self._expert()
        tuned = expert.with_weights(snapshot, source=f"{expert.source}+finetuned")  # type: ignore[arg-type]
        return ProxyModel(model, tuned, expert, self.alpha, source=source.replace("+finetuned", "+proxy-tuned"))
