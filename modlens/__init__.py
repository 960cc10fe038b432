"""modlens: does pretraining quality change the modularity of fine-tuned models?

Importing modlens changes nothing global: no plotting templates, no torch settings, no output.
"""

from modlens.errors import ConfigError, ModelLoadError, ModlensError, PairMismatchError, TaskError
from modlens.models import Model, ModelSpec, check_pair, load_model, save_model, tiny_model
from modlens.tasks import (
    Batch,
    SyntheticTask,
    TaskLayout,
    answer_accuracy,
    load_prompt_batch,
    logit_diff,
    loss,
    token_accuracy,
)
from modlens.training import FinetuneConfig, PretrainConfig, finetune, pretrain

__version__ = "0.1.0"

__all__ = [
    "Batch",
    "ConfigError",
    "FinetuneConfig",
    "Model",
    "ModelLoadError",
    "ModelSpec",
    "ModlensError",
    "PairMismatchError",
    "PretrainConfig",
    "SyntheticTask",
    "TaskError",
    "TaskLayout",
    "__version__",
    "answer_accuracy",
    "check_pair",
    "finetune",
    "load_model",
    "load_prompt_batch",
    "logit_diff",
    "loss",
    "pretrain",
    "save_model",
    "tiny_model",
    "token_accuracy",
]
