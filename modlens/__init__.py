"""modlens: does pretraining quality change the modularity of fine-tuned models?

Importing modlens changes nothing global: no plotting templates, no torch settings, no output.

The names below load on first use, so ``import modlens`` (and ``modlens --help``) does not import torch.
"""

# ruff: noqa: F401  (the TYPE_CHECKING imports at the end exist for type checkers; tests/test_import.py checks them)

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "modlens.ablation": ("ablate", "run_ablation_sweep", "run_attribution_patching"),
    "modlens.components": ("Component", "parse_component"),
    "modlens.drift": (
        "debiased_cka",
        "linear_cka",
        "minibatch_cka",
        "rbf_cka",
        "run_activation_drift",
        "run_weight_drift",
    ),
    "modlens.errors": ("ConfigError", "ModelLoadError", "ModlensError", "PairMismatchError", "TaskError"),
    "modlens.masks": ("Mask", "MaskError", "fit_mask", "load_mask", "masked", "save_mask"),
    "modlens.models": ("Model", "ModelSpec", "check_pair", "save_model", "tiny_model"),
    "modlens.resolve": ("load_model",),
    "modlens.modularity": ("run_modularity",),
    "modlens.progress": ("set_progress",),
    "modlens.tasks": (
        "Batch",
        "SyntheticTask",
        "TaskLayout",
        "answer_accuracy",
        "load_prompt_batch",
        "logit_diff",
        "loss",
        "token_accuracy",
    ),
    # from their modules, not the package: modlens.training.finetune is both a module and a function there
    "modlens.training.finetune": ("FinetuneConfig", "finetune"),
    "modlens.training.pretrain": ("PretrainConfig", "pretrain"),
}
"""The public API: each name and the module it lives in."""

_MODULE_OF = {name: module for module, exported in _EXPORTS.items() for name in exported}

__all__ = sorted([*_MODULE_OF, "__version__"])


def __getattr__(name: str) -> Any:
    if name not in _MODULE_OF:
        raise AttributeError(f"module 'modlens' has no attribute {name!r}")
    value = getattr(importlib.import_module(_MODULE_OF[name]), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:  # the same names, eagerly, for type checkers and editors
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
    from modlens.models import Model, ModelSpec, check_pair, save_model, tiny_model
    from modlens.modularity import run_modularity
    from modlens.progress import set_progress
    from modlens.resolve import load_model
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
    from modlens.training.finetune import FinetuneConfig, finetune
    from modlens.training.pretrain import PretrainConfig, pretrain
