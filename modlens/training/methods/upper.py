"""Upper-layer fine-tuning: only the top decoder layers (and the final norm above them) train."""

from dataclasses import dataclass
from typing import ClassVar

from torch import nn

from modlens.errors import ConfigError
from modlens.models.model import Model
from modlens.models.modules import MODULE_PATHS
from modlens.training.loop import trainable_copy
from modlens.training.methods.base import Method, layer_of, layer_prefix


@dataclass(frozen=True)
class Upper(Method):
    """Layers ``upper_from`` and above train, with the final norm (it only reads the top layer's output); the
    lower layers, the embeddings and the unembedding stay frozen (tied or not, so the vocabulary's geometry the
    lower layers read is kept).

    Attributes:
        upper_from: first trainable layer; ``None`` is the upper half, ``n_layers // 2``.
    """

    name: ClassVar[str] = "upper"
    upper_from: int | None = None

    def split(self, model: Model) -> int:
        n = model.spec.n_layers
        first = n // 2 if self.upper_from is None else self.upper_from
        if not 0 <= first < n:
            raise ConfigError(f"upper_from must be a layer in 0..{n - 1}, got {first}")
        return first

    def trainable(self, model: Model) -> nn.Module:
        first = self.split(model)
        prefix = layer_prefix(model)
        final_norm = MODULE_PATHS[model.spec.architecture]["final_norm"]
        hf = trainable_copy(model.hf)
        for name, p in hf.named_parameters():
            layer = layer_of(name, prefix)
            p.requires_grad_((layer is not None and layer >= first) or name.startswith(final_norm + "."))
        return hf

    def result(self, model: Model, snapshot: nn.Module, source: str) -> Model:
        return model.with_weights(snapshot, source=source)  # type: ignore[arg-type]
