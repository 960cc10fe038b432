"""Training: pretraining with checkpoints along one trajectory, and fine-tuning to a target accuracy."""

from modlens.training.finetune import FinetuneConfig, FinetuneResult, finetune
from modlens.training.loop import Schedule, train, trainable_copy
from modlens.training.pretrain import PretrainConfig, Trajectory, pretrain

__all__ = [
    "FinetuneConfig",
    "FinetuneResult",
    "PretrainConfig",
    "Schedule",
    "Trajectory",
    "finetune",
    "pretrain",
    "train",
    "trainable_copy",
]
