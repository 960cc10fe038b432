"""Mechanistic modularity of one fine-tuned checkpoint: do the composites run through the primitives' parts?

For each subroutine ``f`` and mask seed, ``f``'s *part* is learned on the base checkpoint (and, beside it, on
the tuned model — the only variant for a random-init base): the smallest set of heads and neurons whose
removal breaks primitive ``f`` while the other primitives keep working (``modlens.masks.removal``). A part
passes its gate when removing it takes away at least ``faithful_min_kept`` of ``f``'s accuracy and a random
part of the same size clearly less; only gated parts are scored. The primitives a part *carries* are those
whose accuracy its removal at least halves in the model it was learned on (``f``, and any primitive that
shares its machinery, e.g. ``double`` with ``increment``).

The primary metric, *reuse specificity*, ablates ``f``'s base part in the tuned model: the mean accuracy drop
on composites that use a carried primitive minus the mean drop on those that use none (trained and held-out
pairs separately). Lepori's structural compositionality is computed on the composite task itself: subnetwork
masks for its two steps (the written intermediate and the final result) fitted on the tuned model, each
ablation hurting its own step and sparing the other, gated for faithfulness. Overlaps are reported minus
their expectation for random masks of the same sizes. Every mean ablation takes its means over one fixed
reference batch (``StudyTasks.reference``).
"""

import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import torch
from filelock import FileLock

from modlens.atomic import write_bytes_atomic
from modlens.masks.apply import MeanBaseline, masked_logits, mean_baseline
from modlens.masks.chance import chance_accuracy
from modlens.masks.fit import fit_mask
from modlens.masks.mask import Mask
from modlens.masks.removal import check_necessity, fit_removal_mask
from modlens.models.model import Model
from modlens.modularity import (
    check_faithfulness,
    compositionality_rate,
    expected_iomin,
    expected_iou,
    expected_precision,
    mask_consistency,
    reuse_specificity,
    run_reuse,
)
from modlens.modularity.gate import Faithfulness
from modlens.study.presets import MaskConfig
from modlens.study.tasks import StudyTasks
from modlens.tasks.batch import Batch
from modlens.tasks.metrics import answer_accuracy
from modlens.tasks.operations import PRIMITIVES, parse_task_name

SUBROUTINE_MECHANISMS = (
    "reuse_specificity",
    "reuse_specificity_heldout",
    "reuse_specificity_tuned_mask",
    "reuse_specificity_tuned_mask_heldout",
    "mask_consistency",
    "inheritance_precision_excess",
    "inheritance_recall_excess",
)
UNIT_MECHANISMS = (
    "structural_compositionality",
    "subnetwork_score",
    "ablation_score",
    "mask_iou_excess",
    "mask_iomin_excess",
    "mask_rejection_rate",
    "faithfulness",
    "mask_density",
)
N_PER_TASK = 32  # test examples per composite (and per primitive) in the reuse test
CARRIES = 0.5  # a part carries a primitive when removing it at least halves that primitive's accuracy


@dataclass(frozen=True)
class Part:
    """A learned part of one subroutine, whether it passed its gate, and the primitives it carries."""

    mask: Mask
    passed: bool
    carries: tuple[str, ...]


def mechanism_metrics(
    base: Model, tuned: Model, tasks: StudyTasks, *, base_parts_file: Path | None = None
) -> tuple[dict[tuple[str, str], float], list[dict[str, Any]]]:
    """The mechanistic metrics of one unit (keys ``(metric, subroutine)``) and per-layer part sizes.

    ``base_parts_file`` keeps the base checkpoint's parts, which every method's unit of that checkpoint needs
    (``base_parts``). A fine-tune that took no step (its base already met the target) and left the weights
    bit-identical is the base itself, so its metrics are the same for every method: they are kept beside the
    parts, computed by the first such unit of the checkpoint and read by the others."""
    if base_parts_file is not None and same_weights(base, tuned):
        untuned = base_parts_file.with_name(f"{base_parts_file.stem}-untuned{base_parts_file.suffix}")
        return computed_once(untuned, lambda: _mechanism_metrics(base, tuned, tasks, base_parts_file))
    return _mechanism_metrics(base, tuned, tasks, base_parts_file)


def _mechanism_metrics(
    base: Model, tuned: Model, tasks: StudyTasks, base_parts_file: Path | None
) -> tuple[dict[tuple[str, str], float], list[dict[str, Any]]]:
    study = tasks.study
    means = {"base": mean_baseline(base, tasks.reference), "tuned": mean_baseline(tuned, tasks.reference)}
    parts = {("base", sub, seed): part for (sub, seed), part in base_parts(base, tasks, base_parts_file).items()}
    parts |= {
        ("tuned", sub, seed): _part(tuned, means["tuned"], tasks, sub, seed)
        for sub in study.subroutines
        for seed in study.masks.seeds
    }
    composites = {"": tasks.per_task("finetune", N_PER_TASK), "_heldout": tasks.per_task("heldout", N_PER_TASK)}
    out: dict[tuple[str, str], float] = {}
    for sub in study.subroutines:
        for source, metric in (("base", "reuse_specificity"), ("tuned", "reuse_specificity_tuned_mask")):
            for kind, batches in composites.items():
                values = [
                    _specificity(tuned, means["tuned"], parts[(source, sub, s)], batches) for s in study.masks.seeds
                ]
                out[(metric + kind, sub)] = finite_mean(values)
        own = [parts[("tuned", sub, s)] for s in study.masks.seeds]
        out[("mask_consistency", sub)] = mask_consistency([p.mask for p in own if p.passed])
        pairs = [(parts[("base", sub, s)], parts[("tuned", sub, s)]) for s in study.masks.seeds]
        inherited = [_inheritance(b.mask, t.mask) for b, t in pairs if b.passed and t.passed]
        out[("inheritance_precision_excess", sub)] = finite_mean([p for p, _ in inherited])
        out[("inheritance_recall_excess", sub)] = finite_mean([r for _, r in inherited])
    first, second = study.subroutines
    both = [(parts[("tuned", first, s)], parts[("tuned", second, s)]) for s in study.masks.seeds]
    gated = [(a.mask, b.mask) for a, b in both if a.passed and b.passed]
    out[("mask_iou_excess", "")] = finite_mean([a.iou(b) - expected_iou(a, b) for a, b in gated])
    out[("mask_iomin_excess", "")] = finite_mean([a.iomin(b) - expected_iomin(a, b) for a, b in gated])
    steps, step_gates = _structural_compositionality(tuned, means["tuned"], tasks)
    out |= {(name, ""): value for name, value in steps.items()}
    verdicts = [p.passed for p in parts.values()] + [passed for passed, _ in step_gates]
    out[("mask_rejection_rate", "")] = float(np.mean([not v for v in verdicts]))
    out[("faithfulness", "")] = finite_mean([kept for _, kept in step_gates])
    out[("mask_density", "")] = finite_mean([p.mask.density for (name, _, _), p in parts.items() if name == "tuned"])
    return out, mask_layer_rows(parts)


def base_parts(base: Model, tasks: StudyTasks, file: Path | None = None) -> dict[tuple[str, int], Part]:
    """Each subroutine's part in the base checkpoint, per mask seed.

    They depend on the checkpoint and the study's config only, not on how it is then fine-tuned: with ``file``,
    the first unit of a checkpoint learns them and writes them there (atomically, under a lock, so units running
    at once wait instead of learning them twice) and the other methods' units read them.
    """
    study = tasks.study

    def learn() -> dict[tuple[str, int], Part]:
        means = mean_baseline(base, tasks.reference)
        return {
            (sub, seed): _part(base, means, tasks, sub, seed) for sub in study.subroutines for seed in study.masks.seeds
        }

    return learn() if file is None else computed_once(file, learn)


T = TypeVar("T")


def computed_once(file: Path, compute: Callable[[], T]) -> T:
    """``compute()``, kept in ``file``: the first caller computes and writes it (atomically, under a lock, so
    callers in other processes wait instead of computing it twice), the others read it."""
    file.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(file.with_name(f".{file.name}.lock")):
        if file.is_file():
            return torch.load(file, weights_only=False)
        value = compute()
        buffer = io.BytesIO()
        torch.save(value, buffer)
        write_bytes_atomic(file, buffer.getvalue())
        return value


def same_weights(first: Model, second: Model) -> bool:
    """Whether two models are the same module class with bit-identical parameters and buffers."""
    if type(first.hf) is not type(second.hf):
        return False
    ours, theirs = first.hf.state_dict(), second.hf.state_dict()
    return ours.keys() == theirs.keys() and all(
        ours[k].dtype == theirs[k].dtype and torch.equal(ours[k], theirs[k]) for k in ours
    )


def _part(model: Model, means: MeanBaseline, tasks: StudyTasks, sub: str, seed: int) -> Part:
    """``sub``'s part in ``model``: learned on train splits, gated and read on test splits."""
    study = tasks.study
    target, keep = tasks.part_batches(sub, split="train")
    mask = fit_removal_mask(model, target, keep, reference=means, steps=study.masks.steps, seed=seed)
    own, others = tasks.part_batches(sub, split="test")
    gate = check_necessity(
        model,
        mask,
        own,
        others,
        reference=means,
        n_random=study.masks.faithful_random_draws,
        min_removed=study.masks.faithful_min_kept,
        min_margin=study.masks.faithful_margin,
        seed=seed,
    )
    if not gate.passed:
        return Part(mask, False, ())
    prims = tasks.per_task("primitives", N_PER_TASK)
    drops = run_reuse(model, mask, {sub: prims[sub]}, {p: b for p, b in prims.items() if p != sub}, reference=means)
    carried = tuple(row.composite for row in drops.itertuples() if row.full > 0 and row.ablated <= CARRIES * row.full)
    return Part(mask, True, tuple(p for p in PRIMITIVES if p in carried))


def _specificity(tuned: Model, means: MeanBaseline, part: Part, batches: dict[str, Batch]) -> float:
    """Mean drop on composites using a primitive the part carries minus the mean drop on the others."""
    if not part.passed:
        return float("nan")
    uses = {n: bool(set(parse_task_name(n)) & set(part.carries)) for n in batches}
    with_f = {n: b for n, b in batches.items() if uses[n]}
    without = {n: b for n, b in batches.items() if not uses[n]}
    if not with_f or not without:
        return float("nan")
    return reuse_specificity(run_reuse(tuned, part.mask, with_f, without, reference=means))


def _inheritance(base: Mask, tuned: Mask) -> tuple[float, float]:
    """Precision ``|B ∩ T| / |B|`` and recall ``|B ∩ T| / |T|`` minus their random-mask expectations."""
    if not base.size or not tuned.size:
        return float("nan"), float("nan")
    inter = (base & tuned).size
    precision = inter / base.size - expected_precision(base, tuned)
    recall = inter / tuned.size - expected_precision(tuned, base)
    return precision, recall


def _structural_compositionality(
    tuned: Model, means: MeanBaseline, tasks: StudyTasks
) -> tuple[dict[str, float], list[tuple[bool, float]]]:
    """Lepori's scores for the composite task's two steps on the tuned model, and each step mask's gate
    ``(passed, kept fraction)``; NaN without written steps."""
    names = ("structural_compositionality", "subnetwork_score", "ablation_score")
    if not tasks.layout.write_intermediates:
        return dict.fromkeys(names, float("nan")), []
    study = tasks.study
    steps = tasks.step_batches()
    rows, gates = [], []
    for step, (fit, held) in steps.items():
        other = next(s for s in steps if s != step)
        for seed in study.masks.seeds:
            mask, gate = fit_gated_mask(tuned, fit, held, means, study.masks, seed)
            gates.append((gate.passed, gate.ratio))
            if not gate.passed:
                continue
            inside = {s: _masked(tuned, mask, steps[s][1], "inside", means) for s in (step, other)}
            outside = {s: _masked(tuned, mask, steps[s][1], "outside", means) for s in (step, other)}
            floor = {s: chance_accuracy(steps[s][1]) for s in (step, other)}
            rows.append(
                {
                    "subnetwork_score": max(inside[step], floor[step]) - max(inside[other], floor[other]),
                    "ablation_score": max(outside[step], floor[step]) - max(outside[other], floor[other]),
                }
            )
    scores = pd.DataFrame(rows, columns=["subnetwork_score", "ablation_score"])
    out = {
        "structural_compositionality": compositionality_rate(scores) if rows else float("nan"),
        "subnetwork_score": finite_mean(scores["subnetwork_score"].tolist()),
        "ablation_score": finite_mean(scores["ablation_score"].tolist()),
    }
    return out, gates


def fit_gated_mask(
    model: Model, fit: Batch, held: Batch, means: MeanBaseline, settings: MaskConfig, seed: int
) -> tuple[Mask, Faithfulness]:
    """A subnetwork mask for the task of ``fit`` (``fit_mask`` with the study's sparsity and steps, mean-ablating
    to ``means``) and its faithfulness gate on ``held`` (``check_faithfulness`` with ``settings.faithful_*``)."""
    mask = fit_mask(model, fit, seed=seed, sparsity=settings.sparsity, steps=settings.steps, reference=means)
    gate = check_faithfulness(
        model,
        mask,
        held,
        reference=means,
        n_random=settings.faithful_random_draws,
        min_kept=settings.faithful_min_kept,
        min_margin=settings.faithful_margin,
        seed=seed,
    )
    return mask, gate


@torch.no_grad()
def _masked(model: Model, mask: Mask, batch: Batch, keep: str, means: MeanBaseline) -> float:
    logits = masked_logits(model, mask, batch, keep=keep, replacement="mean", reference=means)  # type: ignore[arg-type]
    return float(answer_accuracy(logits, batch))


def mask_layer_rows(parts: dict[tuple[str, str, int], Part]) -> list[dict[str, Any]]:
    """Size of each part per layer and unit group, per model (base/tuned) and subroutine, mean over seeds."""
    frames = [p.mask.density_by_layer().assign(model=name, subroutine=sub) for (name, sub, _), p in parts.items()]
    keys = ["model", "subroutine", "layer", "group"]
    per_layer = pd.concat(frames).groupby(keys, as_index=False, sort=True)["density"].mean()
    return [
        {**row, "layer": int(row["layer"]), "density": float(row["density"])} for row in per_layer.to_dict("records")
    ]


def finite_mean(values: list[float]) -> float:
    finite = [v for v in values if np.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")
