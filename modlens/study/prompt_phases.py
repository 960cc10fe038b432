"""A checkpoint unit whose fine-tuning tasks are prompt files (a family file's ``finetune`` and
``heldout_prompts``): fine-tune as the study does (learning rate on validation, both arms), then score the held-out
prompts (do the tuned skills transfer?), drift and capability, in the rows the synthetic unit writes.

The synthetic tasks' mechanistic metrics and reasoning probes are rows too, NaN with ``PROMPT_TASKS`` as reason.
"""

from typing import Any

import torch

from modlens.faithfulness import LogitModel
from modlens.models.model import Model
from modlens.names import FIXED_BUDGET
from modlens.study.drift_profile import DRIFT_SHARES, drift_profile
from modlens.study.experts import EXPERT_MIXING
from modlens.study.finetuning import study_method, tune_checkpoint
from modlens.study.phases import MISSED_TARGET, mechanism_names, unit_rows
from modlens.study.presets import StudyConfig
from modlens.study.reasoning import PROBE_METRICS
from modlens.tasks.batch import Batch
from modlens.tasks.metrics import answer_accuracy, loss
from modlens.tasks.prompts import encode_prompts, load_prompts, require_tokenizer
from modlens.training.methods import NO_WEIGHTS, Method

PROMPT_TASKS = "the fine-tuning tasks are prompt files: no primitives or written intermediates to take apart"
"""Why the synthetic tasks' metrics are NaN in a study fine-tuned on prompt files."""

VAL_EVERY = 5
"""Every ``VAL_EVERY``-th line of the ``finetune`` prompt file (the 5th, 10th, ...) is held out for validation."""

COMPOSITE_METRICS = (
    "heldout_composite_accuracy",
    "finetune_composite_accuracy",
    "primitive_accuracy_after",
    "primitive_retention",
)
"""The synthetic unit's behaviour metrics (``modlens.study.behaviour``), measured on both arms."""


def split_prompts(path: str, model: Model) -> tuple[Batch, Batch]:
    """The ``finetune`` prompt file as ``(train, val)`` batches in ``model``'s tokens: every ``VAL_EVERY``-th line
    to validation, the rest to training (deterministic, so every checkpoint and method sees the same split)."""
    examples = load_prompts(path)
    tokenizer, n_ctx = require_tokenizer(model.tokenizer), model.spec.n_ctx
    train = [ex for i, ex in enumerate(examples, start=1) if i % VAL_EVERY]
    val = [ex for i, ex in enumerate(examples, start=1) if not i % VAL_EVERY]
    return encode_prompts(train, tokenizer, n_ctx=n_ctx, task="finetune"), encode_prompts(
        val, tokenizer, n_ctx=n_ctx, task="finetune_val"
    )


@torch.no_grad()
def prompt_scores(model: LogitModel, batch: Batch, name: str) -> dict[str, float]:
    """``{name}_loss`` and ``{name}_accuracy``: the answer loss and whole-answer accuracy on ``batch``."""
    logits = model.logits(batch.tokens)
    return {f"{name}_loss": float(loss(logits, batch)), f"{name}_accuracy": float(answer_accuracy(logits, batch))}


def measure_prompt_checkpoint(
    study: StudyConfig,
    base: Model,
    common: dict[str, Any],
    *,
    finetune: str,
    heldout: Batch,
    method: Method | None = None,
    capability: Batch | None = None,
    quality: Batch | None = None,
) -> list[dict[str, Any]]:
    """``modlens.study.phases.measure_checkpoint`` for a family fine-tuned on the prompt file ``finetune``: the
    same rows (``table``, ``metric``, ``subroutine``, ``value``, ``reason``, ``method``, ``pretrain_loss``,
    ``pretrain_accuracy`` and ``common``), with ``finetune_prompt_*`` (its validation split) and
    ``heldout_prompt_*`` (``heldout``, never trained on) scored before (``_base``) and after each arm.

    Drift is measured on the training prompts; ``quality`` (default: ``heldout``) gives the pretraining quality.
    The synthetic tasks' metrics are NaN with ``PROMPT_TASKS``; the drift of a fine-tune that missed its target is
    NaN with ``MISSED_TARGET``, and of a model without weights of its own with ``NO_WEIGHTS``.
    """
    how = method if method is not None else study_method("full")
    train, val = split_prompts(finetune, base)
    sets = {"finetune_prompt": val, "heldout_prompt": heldout}
    if capability is not None:
        sets["capability"] = capability

    def scores(model: LogitModel) -> dict[str, float]:
        return {k: v for name, batch in sets.items() for k, v in prompt_scores(model, batch, name).items()}

    held_out = prompt_scores(base, quality if quality is not None else heldout, "pretrain")
    before = scores(base)
    tuning = tune_checkpoint(base, study, train, how, val=val)
    tuned = tuning.target.model
    metrics: dict[tuple[str, str], float] = {
        ("finetune_lr", ""): tuning.lr,
        ("finetune_steps", ""): float(tuning.target.steps),
        ("reached_target", ""): float(tuning.target.reached_target),
    }
    metrics |= {(f"{k}_base", ""): v for k, v in before.items()}
    metrics |= {(k, ""): v for k, v in scores(tuned).items()}
    fixed = scores(tuning.fixed_budget)
    if capability is not None:
        metrics[("capability_loss_change", "")] = metrics[("capability_loss", "")] - before["capability_loss"]
    if isinstance(tuning.fixed_budget, Model):
        fixed |= drift_profile(base, tuning.fixed_budget, train)[0]
    metrics |= {(f"{k}{FIXED_BUDGET}", ""): v for k, v in fixed.items()}
    drift_layers: list[dict[str, Any]] = []
    if tuning.target.reached_target and isinstance(tuned, Model):
        drift, drift_layers = drift_profile(base, tuned, train)
        metrics |= {(k, ""): v for k, v in drift.items()}

    shares = [(name, "") for name in DRIFT_SHARES]
    undefined = dict.fromkeys([key for key in mechanism_names(study) if key not in shares], PROMPT_TASKS)
    synthetic = [*COMPOSITE_METRICS, *PROBE_METRICS, "heldout_composite_accuracy_base"]
    synthetic += ["finetune_composite_accuracy_base", *(f"{p}_base" for p in PROBE_METRICS)]
    synthetic += [f"{name}{FIXED_BUDGET}" for name in (*COMPOSITE_METRICS, *PROBE_METRICS)]
    undefined |= {(name, ""): PROMPT_TASKS for name in synthetic}
    if study.expert_mixing and how.name == "svf":
        undefined |= {(name, ""): PROMPT_TASKS for name in EXPERT_MIXING}
    if not isinstance(tuned, Model):
        undefined |= dict.fromkeys(shares, NO_WEIGHTS)
        undefined |= {(f"{name}{FIXED_BUDGET}", ""): NO_WEIGHTS for name in DRIFT_SHARES}
    elif not tuning.target.reached_target:
        undefined |= dict.fromkeys(shares, MISSED_TARGET)
    common = {
        **common,
        "method": how.name,
        "pretrain_loss": held_out["pretrain_loss"],
        "pretrain_accuracy": held_out["pretrain_accuracy"],
    }
    return unit_rows(metrics, undefined, common, drift_layers, [])
