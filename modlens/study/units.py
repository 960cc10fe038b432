"""The study's units of work. Module-level functions of plain arguments, so any executor can run them.

Every unit returns tidy rows (dicts of JSON-ready scalars) tagged with a ``table``: ``"quality"`` (the
family's measured pretraining quality), ``"metrics"`` (one row per metric and subroutine, the frame the
analysis reads), ``"drift_layers"`` (per-layer drift) or ``"mask_layers"`` (per-layer mask density), the
last two for figures.
"""

import math
import warnings
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from modlens.drift.activations import run_activation_drift
from modlens.drift.summary import summarize_activation_drift, summarize_weight_drift
from modlens.drift.weights import run_weight_drift
from modlens.models.model import Model
from modlens.modularity.disentanglement import weight_disentanglement
from modlens.modularity.run import run_modularity
from modlens.study.config import StudyConfig
from modlens.tasks.metrics import answer_accuracy, loss
from modlens.tasks.operations import PRIMITIVES
from modlens.tasks.synthetic import SyntheticTask, sample_mixture
from modlens.training.finetune import FinetuneConfig, FinetuneResult, finetune
from modlens.zoo.build import QUALITY_FILE, Family, build_member
from modlens.zoo.config import Member

# Retention is a ratio of accuracies; below this base accuracy it measures noise, so it is left undefined.
MIN_BASE_ACCURACY_FOR_RETENTION = 0.1


def pretrain_unit(config: dict[str, Any], member: dict[str, Any], models_root: str) -> list[dict[str, Any]]:
    """Pretrains one family member (all its checkpoints) and returns its measured quality rows."""
    study = StudyConfig(**_tuples(config))
    mem = Member(**member)
    path = build_member(study.family(), mem, Path(models_root), progress=False)
    rows = pd.read_csv(path / QUALITY_FILE).to_dict("records")
    return [{"table": "quality", **row} for row in rows]


def checkpoint_unit(
    config: dict[str, Any], member: dict[str, Any], step: int, models_root: str
) -> list[dict[str, Any]]:
    """Fine-tunes one checkpoint and measures behavioural and mechanistic modularity of the result."""
    study = StudyConfig(**_tuples(config))
    mem = Member(**member)
    family = Family(study.family(), Path(models_root))
    base = family.load(mem, step)
    layout = study.family().layout
    finetune_names, heldout_names, _ = study.task_split()
    finetune_tasks = [SyntheticTask.from_name(n, layout) for n in finetune_names]
    heldout_tasks = [SyntheticTask.from_name(n, layout) for n in heldout_names]
    primitives = [SyntheticTask((p,), layout) for p in PRIMITIVES]
    prim_test = sample_mixture(primitives, study.n_eval, split="test", seed=1)
    heldout_test = sample_mixture(heldout_tasks, study.n_eval, split="test", seed=2)
    finetune_test = sample_mixture(finetune_tasks, study.n_eval, split="test", seed=3)

    with torch.no_grad():
        base_prim_logits = base.logits(prim_test.tokens)
        pretrain_loss = float(loss(base_prim_logits, prim_test))
        pretrain_accuracy = float(answer_accuracy(base_prim_logits, prim_test))
    tuned, lr = _finetune_best(base, finetune_tasks, primitives, study)
    model = tuned.model
    metrics: dict[tuple[str, str], float] = {
        ("finetune_lr", ""): lr,
        ("finetune_steps", ""): float(tuned.steps),
        ("reached_target", ""): float(tuned.reached_target),
    }
    with torch.no_grad():
        after = float(answer_accuracy(model.logits(prim_test.tokens), prim_test))
        metrics[("heldout_composite_accuracy", "")] = float(
            answer_accuracy(model.logits(heldout_test.tokens), heldout_test)
        )
        metrics[("heldout_composite_accuracy_base", "")] = float(
            answer_accuracy(base.logits(heldout_test.tokens), heldout_test)
        )
        metrics[("finetune_composite_accuracy", "")] = float(
            answer_accuracy(model.logits(finetune_test.tokens), finetune_test)
        )
    metrics[("primitive_accuracy_after", "")] = after
    metrics[("primitive_retention", "")] = (
        after / pretrain_accuracy if pretrain_accuracy >= MIN_BASE_ACCURACY_FOR_RETENTION else math.nan
    )
    modularity, mask_layers = _modularity(model, base, study, layout)
    metrics.update(modularity)
    drift_metrics, drift_layers = _drift(base, model, finetune_test)
    metrics.update(drift_metrics)
    if study.disentanglement:
        metrics[("disentanglement_error", "")] = _disentanglement(base, finetune_tasks, primitives, study, lr)

    common = {
        "depth": mem.depth,
        "seed": mem.seed,
        "label_noise": mem.label_noise,
        "corpus": mem.corpus,
        "step": step,
        "pretrain_loss": pretrain_loss,
        "pretrain_accuracy": pretrain_accuracy,
    }
    rows = [
        {"table": "metrics", **common, "metric": name, "subroutine": sub, "value": float(value)}
        for (name, sub), value in metrics.items()
    ]
    rows += [{"table": "drift_layers", **common, **layer_row} for layer_row in drift_layers]
    rows += [{"table": "mask_layers", **common, **layer_row} for layer_row in mask_layers]
    return rows


def _finetune_best(
    base: Model, tasks: list[SyntheticTask], replay: list[SyntheticTask], study: StudyConfig
) -> tuple[FinetuneResult, float]:
    """Fine-tunes once per learning rate; picks on validation: reached target, then fewer steps, then accuracy."""
    results = []
    for lr in study.lr_grid:
        result = finetune(base, tasks, _finetune_config(study, lr), replay=replay, progress=False)
        final_acc = float(result.history["val_accuracy"].iloc[-1])
        results.append(((not result.reached_target, result.steps, -final_acc), lr, result))
    best = min(results, key=lambda r: r[0])
    return best[2], best[1]


# run_modularity's metric -> the study's metric name; averaged over mask seeds (and partner subroutines).
_MODULARITY_METRICS = {
    "subnetwork_score": "subnetwork_score",
    "ablation_score": "ablation_score",
    "compositionality_rate": "structural_compositionality",
    "iou": "mask_iou",
    "iomin": "mask_iomin",
    "consistency": "mask_consistency",
    "inheritance_precision": "inheritance_precision",
    "inheritance_recall": "inheritance_recall",
    "faithfulness": "faithfulness",
    "faithfulness_random": "faithfulness_random",
    "density": "mask_density",
}


def _modularity(
    model: Model, base: Model, study: StudyConfig, layout: Any
) -> tuple[dict[tuple[str, str], float], list[dict[str, Any]]]:
    """The modularity metrics (means over mask seeds), and the masks' kept fraction per layer and unit group
    (``model`` tuned or base, per subroutine, mean over mask seeds)."""
    subroutines = {name: SyntheticTask((name,), layout) for name in study.subroutines}
    with warnings.catch_warnings():
        # The random-init control scores at chance by design; its "nothing to localize" warning is expected.
        warnings.simplefilter("ignore", UserWarning)
        frame = run_modularity(
            model,
            subroutines,
            seeds=study.mask_seeds,
            sparsity=study.mask_sparsity,
            steps=study.mask_steps,
            n_fit=study.n_mask_examples,
            n_eval=study.n_mask_examples,
            n_random=1,
            base=base,
        )
    out: dict[tuple[str, str], float] = {}
    for (name, sub), part in frame[frame["metric"].isin(list(_MODULARITY_METRICS))].groupby(["metric", "subroutine"]):
        # IoU/IoMin are symmetric between the two subroutines: report them once.
        key = (_MODULARITY_METRICS[name], "" if name in ("iou", "iomin") else str(sub))
        out[key] = float(part["value"].mean())
    return out, _mask_layers(frame)


def _mask_layers(frame: pd.DataFrame) -> list[dict[str, Any]]:
    parts = []
    for model_name, attr in (("tuned", "masks"), ("base", "base_masks")):
        for (subroutine, _seed), mask in frame.attrs.get(attr, {}).items():
            parts.append(mask.density_by_layer().assign(model=model_name, subroutine=subroutine))
    if not parts:
        return []
    keys = ["model", "subroutine", "layer", "group"]
    per_layer = pd.concat(parts).groupby(keys, as_index=False, sort=True)["density"].mean()
    return [
        {**row, "layer": int(row["layer"]), "density": float(row["density"])} for row in per_layer.to_dict("records")
    ]


def _drift(base: Model, tuned: Model, batch: Any) -> tuple[dict[tuple[str, str], float], list[dict[str, Any]]]:
    weights = run_weight_drift(base, tuned)
    activations = run_activation_drift(base, tuned, batch[:64], measures=("linear_cka",))
    n_layers = base.spec.n_layers
    w = summarize_weight_drift(weights, n_layers=n_layers).set_index("measure").loc["rel_change"]
    a = summarize_activation_drift(activations, n_layers=n_layers)
    a = a[(a["measure"] == "1-linear_cka") & (a["hook"] == "resid_post")].iloc[0]
    metrics = {
        ("weight_drift_upper_share", ""): float(w["upper_share"]),
        ("weight_drift_mean_depth", ""): float(w["mean_depth"]),
        ("cka_drift_upper_share", ""): float(a["upper_share"]),
        ("cka_drift_mean_depth", ""): float(a["mean_depth"]),
    }
    layered = weights[weights["layer"].notna() & weights["head"].isna()]
    per_layer = layered.groupby(layered["layer"].astype(int))["rel_change"].mean()
    resid = activations[activations["hook"] == "resid_post"].set_index("layer")["linear_cka"]
    layers = [
        {"layer": int(layer), "weight_rel_change": float(value), "cka_drift": float(1.0 - resid.get(layer, math.nan))}
        for layer, value in per_layer.items()
    ]
    return metrics, layers


def _disentanglement(
    base: Model, tasks: list[SyntheticTask], replay: list[SyntheticTask], study: StudyConfig, lr: float
) -> float:
    """Mean disentanglement error over the α grid for task vectors of the two halves of the fine-tuning tasks."""
    halves = {"A": tasks[: len(tasks) // 2], "B": tasks[len(tasks) // 2 :]}
    config = _finetune_config(study, lr)
    tuned = {n: finetune(base, ts, config, replay=replay, progress=False).model for n, ts in halves.items()}
    batches = {n: sample_mixture(ts, study.n_eval, split="test", seed=4) for n, ts in halves.items()}
    grid = weight_disentanglement(base, tuned, batches, alphas=study.disentanglement_alphas)
    return float(grid["error"].mean())


def _finetune_config(study: StudyConfig, lr: float) -> FinetuneConfig:
    return FinetuneConfig(
        max_steps=study.finetune_max_steps,
        target_accuracy=study.target_accuracy,
        eval_every=study.eval_every,
        batch_size=study.finetune_batch_size,
        lr=lr,
        replay_fraction=study.replay_fraction,
        n_val=study.n_eval,
        seed=0,
    )


def _tuples(config: dict[str, Any]) -> dict[str, Any]:
    """JSON turns tuples into lists; the frozen configs want tuples back."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in config.items()}
