"""modlens: does pretraining quality change the modularity of fine-tuned models?

Importing modlens changes nothing global: no plotting templates, no torch settings, no output.
"""

from modlens.ablation import ablate, run_ablation_sweep, run_attribution_patching
from modlens.components import Component, parse_component
from modlens.drift import (
    debiased_cka,
    linear_cka,
    minibatch_cka,
    rbf_cka,
    run_activation_drift,
    run_weight_drift,
)
from modlens.errors import ConfigError, ModelLoadError, ModlensError, PairMismatchError, TaskError
from modlens.masks import Mask, MaskError, fit_mask, load_mask, masked, save_mask
from modlens.models import Model, ModelSpec, check_pair, load_model, save_model, tiny_model
from modlens.modularity import run_modularity
from modlens.progress import set_progress
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
    "Component",
    "ConfigError",
    "FinetuneConfig",
    "Mask",
    "MaskError",
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
    "ablate",
    "answer_accuracy",
    "check_pair",
    "debiased_cka",
    "finetune",
    "fit_mask",
    "linear_cka",
    "load_mask",
    "load_model",
    "load_prompt_batch",
    "logit_diff",
    "loss",
    "masked",
    "minibatch_cka",
    "parse_component",
    "pretrain",
    "rbf_cka",
    "run_ablation_sweep",
    "run_activation_drift",
    "run_attribution_patching",
    "run_modularity",
    "run_weight_drift",
    "save_mask",
    "save_model",
    "set_progress",
    "tiny_model",
    "token_accuracy",
]
