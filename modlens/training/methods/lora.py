"""LoRA fine-tuning through ``peft``: low-rank updates beside frozen weights, merged into them for analysis."""

import copy
import warnings
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from modlens.errors import ConfigError
from modlens.models.model import Model
from modlens.training.methods.base import Method


@dataclass(frozen=True)
class Lora(Method):
    """Low-rank adapters ``W + (alpha / rank) B A`` on the chosen linear layers; everything else is frozen.

    The result is merged (``merge_and_unload``): a plain ``Model`` whose targeted weights hold ``W + ΔW``, so
    every analysis treats it like any other fine-tune.

    Attributes:
        rank: adapter rank ``r``.
        alpha: scaling numerator (the update is scaled by ``alpha / rank``).
        targets: module-name suffixes to adapt (e.g. ``("query_key_value", "dense")``); ``None`` adapts every
            linear layer except the unembedding (peft's ``"all-linear"``).
        seed: seeds the adapters' random initialisation (peft draws it from the global generator, which would make
            a fine-tune depend on whatever ran before it in the process).
    """

    name: ClassVar[str] = "lora"
    rank: int = 8
    alpha: int = 16
    targets: tuple[str, ...] | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.rank <= 0 or self.alpha <= 0:
            raise ConfigError(f"LoRA needs a positive rank and alpha, got rank={self.rank}, alpha={self.alpha}")
        if self.targets is not None and not self.targets:
            raise ConfigError("LoRA targets, when given, must name at least one module")

    def trainable(self, model: Model) -> nn.Module:
        from peft import LoraConfig, get_peft_model

        config = LoraConfig(
            r=self.rank,
            lora_alpha=self.alpha,
            lora_dropout=0.0,
            target_modules=list(self.targets) if self.targets is not None else "all-linear",
            # GPT-2 stores its projections as Conv1D (in × out); peft must transpose them
            fan_in_fan_out=model.spec.architecture == "GPT2LMHeadModel",
        )
        # get_peft_model edits the module tree in place: give it a copy. It also calls a transformers method that
        # transformers 5 deprecated (is_gradient_checkpointing); the warning is peft's to fix, not the user's.
        with warnings.catch_warnings(), torch.random.fork_rng(devices=[]):
            warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
            torch.manual_seed(self.seed)
            peft_model = get_peft_model(copy.deepcopy(model.hf), config)
        return peft_model.train()

    def merged(self, module: nn.Module) -> nn.Module:
        """The plain HF module with the adapters folded into the weights (from a copy; ``module`` is kept)."""
        peft_model: Any = copy.deepcopy(module)
        hf = peft_model.merge_and_unload()
        for p in hf.parameters():
            p.requires_grad_(False)
        return hf.eval()

    def result(self, model: Model, snapshot: nn.Module, source: str) -> Model:
        return model.with_weights(self.merged(snapshot), source=source)  # type: ignore[arg-type]

    def adapter(self, snapshot: nn.Module) -> dict[str, torch.Tensor]:
        return {name: p.detach().clone() for name, p in snapshot.named_parameters() if "lora_" in name}
