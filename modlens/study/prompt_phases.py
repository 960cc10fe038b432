"""A checkpoint unit whose fine-tuning tasks are prompt files (a family file's ``finetune`` and
``heldout_prompts``): fine-tune as the study does (learning rate on validation, both arms), then score the held-out
prompts (do the tuned skills transfer?), drift and capability, in the rows the synthetic unit writes.

Masks are learned on the prompt task itself, on the base and the tuned model (``prompt_masks``); the synthetic
tasks' other mechanistic metrics and reasoning probes are rows too, NaN with ``PROMPT_TASKS`` as reason.
"""

import math
import weakref
from typing import Any

import numpy as np
import torch

from modlens.components import point_hook
from modlens.faithfulness import LogitModel
from modlens.interventions.bridge import bridge_activations
from modlens.masks.apply import GROUP_POINTS, MeanBaseline
from modlens.models.model import Model
from modlens.modularity import expected_iou, mask_consistency
from modlens.names import FIXED_BUDGET
from modlens.study.drift_profile import DRIFT_SHARES, drift_profile
from modlens.study.experts import EXPERT_MIXING
from modlens.study.finetuning import study_method, tune_checkpoint
from modlens.study.mechanisms import Part, finite_mean, fit_gated_mask, mask_layer_rows
from modlens.study.phases import MISSED_TARGET, answer_scores, mechanism_names, unit_rows
from modlens.study.presets import StudyConfig
from modlens.study.reasoning import PROBE_METRICS
from modlens.tasks.batch import Batch
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

PROMPT_MASKS = (
    "prompt_mask_density",
    "prompt_mask_faithfulness",
    "prompt_mask_rejection_rate",
    "prompt_mask_consistency",
    "prompt_mask_inheritance_iou_excess",
)
"""The masks learned on the fine-tuning prompt task (``prompt_masks``), on the stop-at-target arm."""

NO_GATED_MASK = "no mask passed its faithfulness gate"
"""Why a prompt-mask metric scored over gated masks is NaN."""

ONE_GATED_MASK = "fewer than two of the tuned model's masks passed their faithfulness gate: nothing to compare"
"""Why ``prompt_mask_consistency`` is NaN when a single tuned mask (or a single seed) passed."""

NO_GATED_PAIR = "no seed's base and tuned masks both passed their faithfulness gate: no pair to compare"
"""Why ``prompt_mask_inheritance_iou_excess`` is NaN when some tuned mask passed but never with its base's."""


def split_prompts(path: str, model: Model) -> tuple[Batch, Batch]:
    """The ``finetune`` prompt file as ``(train, val)`` batches in ``model``'s tokens: every ``VAL_EVERY``-th line
    to validation, the rest to training (deterministic, so every checkpoint and method sees the same split).

    Both are padded to one width (the longest line of the file), so a mean baseline taken over the training prompts
    can score the validation prompts."""
    examples = load_prompts(path)
    both = encode_prompts(examples, require_tokenizer(model.tokenizer), n_ctx=model.spec.n_ctx)
    val = torch.arange(1, len(examples) + 1) % VAL_EVERY == 0
    return Batch(both.tokens[~val], both.answer_mask[~val], "finetune"), Batch(
        both.tokens[val], both.answer_mask[val], "finetune_val"
    )


@torch.no_grad()
def prompt_baseline(model: Model, reference: Batch) -> MeanBaseline:
    """``modlens.masks.apply.mean_baseline`` over the real tokens of right-padded prompts: each position's mean over
    the rows whose prompt and answer reach it (the plain per-position mean would average padding in wherever
    prompts differ in length); a position no row reaches gets the mean over every real token."""
    names = [point_hook(layer, point) for layer in range(model.spec.n_layers) for point in GROUP_POINTS.values()]
    cache = bridge_activations(model, reference.tokens, names)
    # a token is real up to its row's last answer token (answers end the line; padding follows)
    real = (reference.answer_mask.flip(-1).cumsum(-1).flip(-1) > 0).to(model.device)
    weights = real.float() / real.sum(0).clamp(min=1)
    means = {}
    for name, acts in cache.items():
        w = weights.view(*weights.shape, *([1] * (acts.ndim - 2)))
        per_pos = (acts.float() * w).sum(0)
        pooled = acts.float()[real].mean(0)
        means[name] = torch.where(real.any(0).view(-1, *([1] * (acts.ndim - 2))), per_pos, pooled).to(acts.dtype)
    return MeanBaseline(means, reference.n_pos, reference.task, weakref.ref(model))


def prompt_masks(
    study: StudyConfig, base: Model, tuned: Model, train: Batch, val: Batch
) -> tuple[dict[tuple[str, str], float], list[dict[str, Any]]]:
    """Masks for the fine-tuning prompt task on ``base`` and ``tuned``, one per ``study.masks`` seed: learned on
    ``train`` (``fit_mask``, the synthetic study's step-mask settings), mean-ablating to ``prompt_baseline`` over
    ``train``, gated on ``val`` (``check_faithfulness`` with ``study.masks.faithful_*``).

    Returns the ``PROMPT_MASKS`` metrics (keys ``(metric, "")``): the tuned masks' mean density and consistency
    over the gated ones, their gates' mean kept fraction, the share of all masks that failed their gate, and per
    seed whose two masks both passed, the IoU of the base's and the tuned mask minus ``expected_iou`` (does the tuned
    model run the task through the parts the base used?); and the masks' per-layer sizes (subroutine ``"prompt"``).
    """
    settings = study.masks
    parts: dict[tuple[str, str, int], Part] = {}
    kept: list[float] = []
    for name, model in (("base", base), ("tuned", tuned)):
        means = prompt_baseline(model, train)
        for seed in settings.seeds:
            mask, gate = fit_gated_mask(model, train, val, means, settings, seed)
            parts[(name, "prompt", seed)] = Part(mask, gate.passed, ())
            if name == "tuned":
                kept.append(gate.ratio)
    own = [parts[("tuned", "prompt", s)] for s in settings.seeds]
    pairs = [
        (parts[("base", "prompt", s)].mask, t.mask)
        for s, t in zip(settings.seeds, own, strict=True)
        if t.passed and parts[("base", "prompt", s)].passed
    ]
    values = {
        "prompt_mask_density": finite_mean([p.mask.density for p in own if p.passed]),
        "prompt_mask_faithfulness": finite_mean(kept) if any(p.passed for p in own) else float("nan"),
        "prompt_mask_rejection_rate": float(np.mean([not p.passed for p in parts.values()])),
        "prompt_mask_consistency": mask_consistency([p.mask for p in own if p.passed]),
        "prompt_mask_inheritance_iou_excess": finite_mean([b.iou(t) - expected_iou(b, t) for b, t in pairs]),
    }
    return {(name, ""): value for name, value in values.items()}, mask_layer_rows(parts)


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
    On a fine-tune that reached its target, masks are learned on the prompt task (``prompt_masks``: the
    ``PROMPT_MASKS`` metrics, NaN with ``NO_GATED_MASK`` when no mask passed its gate, and ``mask_layers`` rows).
    The synthetic tasks' metrics are NaN with ``PROMPT_TASKS``; the drift and masks of a fine-tune that missed its
    target are NaN with ``MISSED_TARGET``, and of a model without weights of its own with ``NO_WEIGHTS``.
    """
    how = method if method is not None else study_method("full")
    train, val = split_prompts(finetune, base)
    sets = {"finetune_prompt": val, "heldout_prompt": heldout}
    if capability is not None:
        sets["capability"] = capability

    def scores(model: LogitModel) -> dict[str, float]:
        return {k: v for name, batch in sets.items() for k, v in answer_scores(model, batch, name).items()}

    held_out = answer_scores(base, quality if quality is not None else heldout, "pretrain")
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
    mask_layers: list[dict[str, Any]] = []
    if tuning.target.reached_target and isinstance(tuned, Model):
        drift, drift_layers = drift_profile(base, tuned, train)
        metrics |= {(k, ""): v for k, v in drift.items()}
        masks, mask_layers = prompt_masks(study, base, tuned, train, val)
        metrics |= masks

    shares = [(name, "") for name in DRIFT_SHARES]
    prompt_masked = [(name, "") for name in PROMPT_MASKS]
    undefined = dict.fromkeys([key for key in mechanism_names(study) if key not in shares], PROMPT_TASKS)
    synthetic = [*COMPOSITE_METRICS, *PROBE_METRICS, "heldout_composite_accuracy_base"]
    synthetic += ["finetune_composite_accuracy_base", *(f"{p}_base" for p in PROBE_METRICS)]
    synthetic += [f"{name}{FIXED_BUDGET}" for name in (*COMPOSITE_METRICS, *PROBE_METRICS)]
    undefined |= {(name, ""): PROMPT_TASKS for name in synthetic}
    if study.expert_mixing and how.name == "svf":
        undefined |= {(name, ""): PROMPT_TASKS for name in EXPERT_MIXING}
    if not isinstance(tuned, Model):
        undefined |= dict.fromkeys(shares + prompt_masked, NO_WEIGHTS)
        undefined |= {(f"{name}{FIXED_BUDGET}", ""): NO_WEIGHTS for name in DRIFT_SHARES}
    elif not tuning.target.reached_target:
        undefined |= dict.fromkeys(shares + prompt_masked, MISSED_TARGET)
    else:
        undefined |= dict.fromkeys(prompt_masked, NO_GATED_MASK)
        if math.isfinite(metrics[("prompt_mask_density", "")]):
            undefined[("prompt_mask_consistency", "")] = ONE_GATED_MASK
            undefined[("prompt_mask_inheritance_iou_excess", "")] = NO_GATED_PAIR
    common = {
        **common,
        "method": how.name,
        "pretrain_loss": held_out["pretrain_loss"],
        "pretrain_accuracy": held_out["pretrain_accuracy"],
    }
    return unit_rows(metrics, undefined, common, drift_layers, mask_layers)
