"""Full fine-tuning: every weight trains."""

from dataclasses import dataclass
from typing import ClassVar

from torch import nn

from modlens.models.model import Model
from modlens.training.loop import trainable_copy
from modlens.training.methods.base import Method


@dataclass(frozen=True)
class Full(Method):
    """Every parameter trains (embeddings and unembedding included)."""

    name: ClassVar[str] = "full"

    def trainable(self, model: Model) -> nn.Module:
        return trainable_copy(model.hf)

    def result(self, model: Model, snapshot: nn.Module, source: str) -> Model:
        return model.with_weights(snapshot, source=source)  # type: ignore[arg-type]
