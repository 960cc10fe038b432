"""Training: pretraining with checkpoints along one trajectory, and fine-tuning to a target accuracy by one of
several methods, and mixing the experts it makes."""

from modlens.training.experts import add_task_vectors, interference, mix_scales, run_composability, task_vector
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
    "add_task_vectors",
    "apply_scales",
    "finetune",
    "interference",
    "mix_scales",
    "pretrain",
    "run_composability",
    "task_vector",
    "train",
    "trainable_copy",
]
