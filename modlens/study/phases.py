"""The study's units of work. Module-level functions of plain arguments, so any executor can run them.

Every unit returns tidy rows (dicts of JSON-ready scalars) tagged with a ``table``: ``"quality"`` (the
family's measured pretraining quality), ``"metrics"`` (one row per metric and subroutine, the frame the
analysis reads), ``"drift_layers"`` (per-layer drift) or ``"mask_layers"`` (per-layer mask density), the
last two for figures.
"""

import math
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from modlens.faithfulness import LogitModel
from modlens.models.model import Model
from modlens.names import FIXED_BUDGET
from modlens.study.behaviour import accuracies, behaviour_metrics
from modlens.study.drift_profile import DRIFT_SHARES, drift_profile
from modlens.study.experts import disentanglement_error, expert_mixing
from modlens.study.finetuning import finetune_checkpoint, study_method
from modlens.study.mechanisms import SUBROUTINE_MECHANISMS, UNIT_MECHANISMS, mechanism_metrics
from modlens.study.presets import StudyConfig
from modlens.study.reasoning import reasoning_probes
from modlens.study.tasks import StudyTasks
from modlens.tasks.batch import Batch
from modlens.tasks.metrics import answer_accuracy, loss
from modlens.training.methods import NO_WEIGHTS, Method
from modlens.zoo.build import QUALITY_FILE, Family, build_member
from modlens.zoo.cache import checkpoint_dirname
from modlens.zoo.family import Member, members

PARTS_DIR = "parts"
"""Where, beside the pretrained checkpoints, each checkpoint's base parts are kept for its units to share."""

MISSED_TARGET = "the fine-tune did not reach the target accuracy, so it says nothing about how the task is done"
"""Why mechanistic metrics are NaN for a fine-tune that missed its target."""


def pretrain_unit(config: dict[str, Any], member: dict[str, Any], models_root: str) -> list[dict[str, Any]]:
    """Pretrains one family member or proxy-tuning expert (all its checkpoints); returns its measured quality."""
    study = StudyConfig.from_dict(config)
    mem = Member(**member)
    path = build_member(study.family, mem, Path(models_root), progress=False)
    rows = pd.read_csv(path / QUALITY_FILE).to_dict("records")
    # a proxy-tuning expert is no level of the study: its quality is kept apart from the family's
    table = "quality" if mem in members(study.family) else "expert_quality"
    return [{"table": table, **row} for row in rows]


def checkpoint_unit(
    config: dict[str, Any],
    member: dict[str, Any],
    step: int,
    models_root: str,
    method: str = "full",
    expert: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Fine-tunes one checkpoint by ``method`` and measures behavioural and mechanistic modularity of the result.

    ``expert`` is the family member whose checkpoint at the same step proxy-tuning tunes (``method="proxy"``).
    """
    study = StudyConfig.from_dict(config)
    mem = Member(**member)
    family = Family(study.family, Path(models_root))
    base = family.load(mem, step)
    small = family.load(Member(**expert), step) if expert is not None else None
    common = {"depth": mem.depth, "seed": mem.seed, "label_noise": mem.label_noise, "corpus": mem.corpus, "step": step}
    # every method's unit of this checkpoint uses its base parts: learned once per study and checkpoint
    parts = Path(models_root) / PARTS_DIR / f"{mem.name}-{checkpoint_dirname(step)}-{study.fingerprint()}.pt"
    return measure_checkpoint(study, base, common, method=study_method(method, small), base_parts_file=parts)


def measure_checkpoint(
    study: StudyConfig,
    base: Model,
    common: dict[str, Any],
    method: Method | None = None,
    capability: Batch | None = None,
    quality: Batch | None = None,
    base_parts_file: Path | None = None,
) -> list[dict[str, Any]]:
    """A checkpoint unit's work on a loaded ``base``: fine-tune by ``method`` (default all weights), measure, and
    tag every row with ``common`` (the run's coordinates), ``method``, ``pretrain_loss`` and ``pretrain_accuracy``.

    Behaviour and the reasoning-faithfulness probes are measured on both arms (stop-at-target, and the fixed
    budget with ``_fixed_budget`` names); mechanisms only on a fine-tune that reached the target (a model that
    does not do the task says nothing about how it does it), and only on a model with weights of its own (not a
    proxy-tuned ensemble). A metric that is undefined is NaN with its ``reason``, never zero.

    ``capability`` is a prompt set fine-tuning does not train (a family file's ``capability``): its answer loss
    and accuracy before and after fine-tuning say whether the checkpoint kept what it knew. ``quality`` is the
    held-out prompt set whose answer loss and accuracy are the checkpoint's pretraining quality (default: the
    primitives' test split). ``base_parts_file`` shares the base checkpoint's parts between its units
    (``modlens.study.mechanisms.base_parts``).
    """
    how = method if method is not None else study_method("full")
    tasks = StudyTasks.for_model(study, base)
    held_out = quality if quality is not None else tasks.test("primitives")
    with torch.no_grad():
        held_out_logits = base.logits(held_out.tokens)
        pretrain_loss = float(loss(held_out_logits, held_out))
        pretrain_accuracy = float(answer_accuracy(held_out_logits, held_out))
    before = accuracies(base, tasks)
    tuning = finetune_checkpoint(base, tasks, how)
    tuned = tuning.target.model
    metrics: dict[tuple[str, str], float] = {
        ("finetune_lr", ""): tuning.lr,
        ("finetune_steps", ""): float(tuning.target.steps),
        ("reached_target", ""): float(tuning.target.reached_target),
        ("heldout_composite_accuracy_base", ""): before["heldout"],
        ("finetune_composite_accuracy_base", ""): before["finetune"],
    }
    metrics |= {(k, ""): v for k, v in behaviour_metrics(tuned, before, tasks).items()}
    probes = reasoning_probes(base, tasks)
    metrics |= {(f"{k}_base", ""): v for k, v in probes.values.items()}
    probes_after = reasoning_probes(tuned, tasks)
    metrics |= {(k, ""): v for k, v in probes_after.values.items()}
    fixed = behaviour_metrics(tuning.fixed_budget, before, tasks) | reasoning_probes(tuning.fixed_budget, tasks).values
    weights = isinstance(tuned, Model)
    if isinstance(tuning.fixed_budget, Model):
        fixed |= drift_profile(base, tuning.fixed_budget, tasks.test("finetune"))[0]
    if capability is not None:
        kept = answer_scores(base, capability, "capability")
        metrics |= {(f"{k}_base", ""): v for k, v in kept.items()}
        metrics |= {(k, ""): v for k, v in answer_scores(tuned, capability, "capability").items()}
        fixed |= answer_scores(tuning.fixed_budget, capability, "capability")
        metrics[("capability_loss_change", "")] = metrics[("capability_loss", "")] - kept["capability_loss"]
    metrics |= {(f"{k}{FIXED_BUDGET}", ""): v for k, v in fixed.items()}
    drift_layers: list[dict[str, Any]] = []
    mask_layers: list[dict[str, Any]] = []
    if tuning.target.reached_target and isinstance(tuned, Model):
        drift, drift_layers = drift_profile(base, tuned, tasks.test("finetune"))
        metrics |= {(k, ""): v for k, v in drift.items()}
        mechanisms, mask_layers = mechanism_metrics(base, tuned, tasks, base_parts_file=base_parts_file)
        metrics |= mechanisms
        if study.disentanglement:
            metrics[("disentanglement_error", "")] = disentanglement_error(base, tasks, tuning.lr, how)
    if study.expert_mixing and how.name == "svf":
        metrics |= {(name, ""): value for name, value in expert_mixing(base, tasks, tuning.lr).items()}
    undefined: dict[tuple[str, str], str] = {}
    if not weights:
        undefined |= dict.fromkeys(mechanism_names(study), NO_WEIGHTS)
        undefined |= {(f"{name}{FIXED_BUDGET}", ""): NO_WEIGHTS for name in DRIFT_SHARES}
    elif not tuning.target.reached_target:
        undefined |= dict.fromkeys(mechanism_names(study), MISSED_TARGET)
    for probe_name in probes.absent:
        for suffix in ("", "_base", FIXED_BUDGET):
            undefined[(f"{probe_name}{suffix}", "")] = probes.reason
    common = {
        **common,
        "method": how.name,
        "pretrain_loss": pretrain_loss,
        "pretrain_accuracy": pretrain_accuracy,
    }
    return unit_rows(metrics, undefined, common, drift_layers, mask_layers)


def unit_rows(
    metrics: dict[tuple[str, str], float],
    undefined: dict[tuple[str, str], str],
    common: dict[str, Any],
    drift_layers: list[dict[str, Any]],
    mask_layers: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    """A checkpoint unit's rows: one ``"metrics"`` row per ``(metric, subroutine)`` of ``metrics``, where a metric
    of ``undefined`` that is absent or NaN is NaN with its ``reason``; then the per-layer rows; all tagged with
    ``common``."""
    metrics = dict(metrics)
    reasons: dict[tuple[str, str], str] = {}
    for key, reason in undefined.items():
        if key not in metrics or math.isnan(metrics[key]):
            metrics[key] = math.nan
            reasons[key] = reason
    rows = [
        {
            "table": "metrics",
            **common,
            "metric": name,
            "subroutine": sub,
            "value": float(value),
            **({"reason": reasons[(name, sub)]} if (name, sub) in reasons else {}),
        }
        for (name, sub), value in metrics.items()
    ]
    rows += [{"table": "drift_layers", **common, **layer_row} for layer_row in drift_layers]
    rows += [{"table": "mask_layers", **common, **layer_row} for layer_row in mask_layers]
    return rows


@torch.no_grad()
def answer_scores(model: LogitModel, batch: Batch, name: str) -> dict[str, float]:
    """``{name}_loss`` and ``{name}_accuracy``: the answer loss and whole-answer accuracy on ``batch`` (a prompt
    set: the capability set, a family file's fine-tuning or held-out prompts)."""
    logits = model.logits(batch.tokens)
    return {f"{name}_loss": float(loss(logits, batch)), f"{name}_accuracy": float(answer_accuracy(logits, batch))}


def mechanism_names(study: StudyConfig) -> list[tuple[str, str]]:
    """Every mechanistic metric a unit reports, as ``(metric, subroutine)`` (NaN when the fine-tune missed)."""
    names = [(name, "") for name in (*DRIFT_SHARES, *UNIT_MECHANISMS)]
    names += [(name, sub) for name in SUBROUTINE_MECHANISMS for sub in study.subroutines]
    return names + ([("disentanglement_error", "")] if study.disentanglement else [])
