"""Training: pretraining with checkpoints along one trajectory, and fine-tuning to a target accuracy by one of
several methods."""

from modlens.training.finetune import FinetuneConfig, FinetuneResult, finetune
from modlens.training.loop import Schedule, train, trainable_copy
from modlens.training.methods import (
    METHODS,
    Full,
    Lora,
    Method,
    NoWeightsError,
    Proxy,
    ProxyModel,
    Scales,
    Svf,
    Upper,
    apply_scales,
)
from modlens.training.pretrain import PretrainConfig, Trajectory, pretrain

__all__ = [
    "METHODS",
    "FinetuneConfig",
    "FinetuneResult",
    "Full",
    "Lora",
    "Method",
    "NoWeightsError",
    "PretrainConfig",
    "Proxy",
    "ProxyModel",
    "Scales",
    "Schedule",
    "Svf",
    "Trajectory",
    "Upper",
    "apply_scales",
    "finetune",
    "pretrain",
    "train",
    "trainable_copy",
]
