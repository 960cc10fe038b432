"""What a fine-tuning method is: which module the loop trains, and how the trained module becomes a result."""

import re
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import torch
from torch import nn

from modlens.errors import ConfigError
from modlens.models.model import Model
from modlens.models.modules import MODULE_PATHS


class Method(ABC):
    """A fine-tuning method: a frozen dataclass of its options plus three steps.

    ``trainable`` builds the module the training loop updates (a copy: the base is never touched) with
    ``requires_grad`` on exactly the parameters the method may change; ``logits`` reads that module's logits
    for the validation check; ``result`` turns a frozen snapshot of it into what ``finetune`` returns.
    """

    name: ClassVar[str]

    @abstractmethod
    def trainable(self, model: Model) -> nn.Module: ...

    def logits(self, model: Model, module: nn.Module, tokens: torch.Tensor) -> torch.Tensor:
        """Logits the validation check (and the target) is judged on, for ``module`` trained from ``model``."""
        return module(tokens).logits

    @abstractmethod
    def result(self, model: Model, snapshot: nn.Module, source: str) -> Any:
        """The fine-tuned model (a ``Model``, or a model-like object) from a frozen copy of the trained module."""

    def adapter(self, snapshot: nn.Module) -> dict[str, torch.Tensor]:
        """The method's own trained parameters (SVF's scales, LoRA's factors); empty where the weights are all."""
        return {}


def layer_prefix(model: Model) -> str:
    """The parameter-name prefix of the decoder layers (``"gpt_neox.layers"``), for layer-scoped methods."""
    paths = MODULE_PATHS.get(model.spec.architecture)
    if paths is None:
        known = ", ".join(MODULE_PATHS)
        raise ConfigError(
            f"layer-scoped fine-tuning needs a known layer layout; {model.spec.architecture} is not one of {known}"
        )
    return paths["layers"]


def layer_of(name: str, prefix: str) -> int | None:
    """The decoder layer a parameter or module name lies in, or ``None`` outside the layers."""
    found = re.match(re.escape(prefix) + r"\.(\d+)\.", name)
    return int(found.group(1)) if found else None
