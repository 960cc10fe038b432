"""``run_modularity``: fit masks for several subroutines over seeds, gate them, and measure every modularity metric."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from modlens.interventions.replacements import Replacement
from modlens.masks.apply import MeanBaseline, masked_scores, mean_baseline
from modlens.masks.fit import Algorithm, fit_mask
from modlens.masks.mask import Granularity, Mask, MaskError
from modlens.models.model import Model, check_pair
from modlens.modularity.expected import overlap_excess
from modlens.modularity.gate import Faithfulness, check_faithfulness
from modlens.modularity.overlap import circuit_overlap, compositionality_rate, mask_consistency
from modlens.modularity.scores import chance_for, lepori_score
from modlens.tasks.batch import Batch
from modlens.tasks.metrics import Metric, answer_accuracy
from modlens.tasks.synthetic import SyntheticTask

Subroutine = SyntheticTask | Batch
COLUMNS = ["subroutine", "seed", "metric", "evaluated_on", "value"]
NAN = float("nan")
OVERLAPS = ("precision", "recall", "iou", "iomin")

MaskKey = tuple[str, int]
"""``(subroutine, seed)``."""


@dataclass(frozen=True)
class ModularityResult:
    """What ``run_modularity`` measured and the masks it measured it on.

    Attributes:
        frame: the long frame ``subroutine, seed, metric, evaluated_on, value`` (see ``run_modularity``).
        masks: the fitted masks by ``(subroutine, seed)``.
        faithfulness: the gate's verdict on each mask.
        base_masks: with ``base``: the masks fitted on the base model (empty without).
        base_faithfulness: with ``base``: the gate's verdict on each base mask.
    """

    frame: pd.DataFrame
    masks: Mapping[MaskKey, Mask]
    faithfulness: Mapping[MaskKey, Faithfulness]
    base_masks: Mapping[MaskKey, Mask] = field(default_factory=dict)
    base_faithfulness: Mapping[MaskKey, Faithfulness] = field(default_factory=dict)


def _split(sub: Subroutine, n_fit: int, n_eval: int) -> tuple[Batch, Batch]:
    """Fitting and evaluation data: a task's train and test splits, or the two halves of a batch."""
    if isinstance(sub, SyntheticTask):
        return sub.sample(n_fit, split="train", seed=0), sub.sample(n_eval, split="test", seed=0)
    if len(sub) < 2:
        raise MaskError("a subroutine batch needs at least two examples (half to fit, half to evaluate)")
    half = len(sub) // 2
    return sub[:half], sub[half:]


def run_modularity(
    model: Model,
    subroutines: Mapping[str, Subroutine],
    *,
    seeds: Sequence[int] = (0, 1, 2),
    granularity: Granularity = "component",
    algorithm: Algorithm = "continuous_sparsification",
    sparsity: float = 0.5,
    steps: int = 200,
    replacement: Replacement = "mean",
    n_fit: int = 256,
    n_eval: int = 256,
    n_random: int = 5,
    min_kept: float = 0.8,
    min_margin: float = 0.2,
    base: Model | None = None,
    reference: Batch | None = None,
    metric: Metric = answer_accuracy,
    progress: bool = False,
) -> ModularityResult:
    """Fits a mask per subroutine and seed, gates it, and measures specialization, reuse, consistency and
    inheritance of the masks that pass.

    Every mask goes through ``check_faithfulness`` on its own evaluation batch (and, with ``base``, every base
    mask on the base model). A mask that fails contributes NaN to every metric computed from it: its masked
    accuracies and drops, the Lepori scores, the overlaps it takes part in, inheritance; consistency and
    ``compositionality_rate`` count only the masks that pass.

    Args:
        model: the model to analyse.
        subroutines: at least two subroutines by name: synthetic tasks (fit on the train split, evaluated
            on the test split) or batches (fit on the first half, evaluated on the second). Batches may share
            their tokens and differ in their answer masks (the two steps of one composite prompt).
        seeds: mask seeds (also the seeds of each mask's random circuits).
        granularity, algorithm, sparsity, steps, replacement: passed to ``fit_mask``. Evaluation replaces
            removed units the same way (weight masks: zero).
        n_fit, n_eval: examples sampled per synthetic task for fitting and evaluation.
        n_random, min_kept, min_margin: the faithfulness gate's random circuits and thresholds.
        base: the pretrained model this one was fine-tuned from; masks are fitted (and gated) on it too,
            and the overlap of base and tuned masks is reported (inheritance).
        reference: one fixed batch (sequences as long as every subroutine's) that mean ablation takes its
            means over, for fitting and scoring alike, on each model (computed once per model). Without it,
            fitting takes the means over the fitted batch and scoring over each scored batch (the behaviour
            of earlier versions: batches scored under one mask then get different baselines).
        metric: the accuracy metric (chance levels follow it).
        progress: show progress bars while fitting.

    Returns:
        The frame, and the masks with the gate's verdicts (``ModularityResult``). The frame is long:
        ``subroutine, seed, metric, evaluated_on, value``. Per (subroutine, seed):
        ``size``, ``density``, ``faithful`` (1/0), ``faithfulness`` (kept / full accuracy on its own
        subroutine), ``faithfulness_random`` (the mean of its random circuits'); ``accuracy_full``,
        ``accuracy_inside`` / ``accuracy_outside`` / ``drop`` per evaluated subroutine;
        ``subnetwork_score`` and ``ablation_score`` (Lepori), ``iou`` / ``iomin`` and ``iou_excess`` /
        ``iomin_excess`` (minus the expectation for random masks of the same per-group sizes) against each
        other subroutine (its mask of the same seed); with ``base``: ``base_faithful`` and
        ``inheritance_{precision,recall,iou,iomin}`` with their ``_excess``. Per subroutine (``seed``
        missing): ``consistency`` (mean IoU across seeds of the faithful masks), ``compositionality_rate``,
        ``rejection_rate`` (fraction of its masks that failed the gate) and, with ``base``,
        ``base_rejection_rate``.

    Raises:
        MaskError: fewer than two subroutines, no seeds, or a reference of another sequence length.
    """
    if len(subroutines) < 2:
        raise MaskError(f"modularity compares subroutines: give at least two, got {list(subroutines)}")
    if not seeds:
        raise MaskError("give at least one mask seed")
    if base is not None:
        check_pair(base, model)
    data = {name: _split(sub, n_fit, n_eval) for name, sub in subroutines.items()}
    evaluation = {name: ev for name, (_, ev) in data.items()}
    scored_with: Replacement = replacement if granularity == "component" else "zero"
    if reference is not None:
        lengths = {name: b.n_pos for name, b in evaluation.items() if b.n_pos != reference.n_pos}
        if lengths:
            raise MaskError(f"the reference batch has {reference.n_pos} positions, but {lengths} differ")
    fit_args: dict[str, Any] = {
        "granularity": granularity,
        "algorithm": algorithm,
        "sparsity": sparsity,
        "steps": steps,
        "replacement": replacement,
        "progress": progress,
    }
    gate_args: dict[str, Any] = {
        "n_random": n_random,
        "min_kept": min_kept,
        "min_margin": min_margin,
        "replacement": scored_with,
        "metric": metric,
    }
    means = _means(model, reference, scored_with)
    masks = {
        (n, s): fit_mask(model, fit, seed=s, reference=means, **fit_args) for n, (fit, _) in data.items() for s in seeds
    }
    with torch.no_grad():
        full = {n: float(metric(model.logits(b.tokens), b)) for n, b in evaluation.items()}
    chance = {n: chance_for(metric, b) for n, b in evaluation.items()}
    gates = {
        (n, s): check_faithfulness(model, m, evaluation[n], reference=means, seed=s, full=full[n], **gate_args)
        for (n, s), m in masks.items()
    }
    rows: list[tuple[Any, ...]] = []
    for (name, seed), mask in masks.items():
        gate = gates[(name, seed)]
        rows += [
            (name, seed, "size", None, mask.size),
            (name, seed, "density", None, mask.density),
            (name, seed, "faithful", None, float(gate.passed)),
            (name, seed, "faithfulness", name, gate.ratio),
            (name, seed, "faithfulness_random", name, float(np.mean(gate.random_ratios))),
        ]
        acc = {}
        for other, batch in evaluation.items():
            inside, outside = NAN, NAN
            if gate.passed:
                inside, outside = masked_scores(
                    model, [mask, ~mask], batch, metric=metric, replacement=scored_with, reference=means
                )
            acc[other] = (inside, outside)
            rows += [
                (name, seed, "accuracy_full", other, full[other]),
                (name, seed, "accuracy_inside", other, inside),
                (name, seed, "accuracy_outside", other, outside),
                (name, seed, "drop", other, full[other] - outside),
            ]
        for other in evaluation:
            if other == name:
                continue
            floors = {"chance_target": chance[name], "chance_other": chance[other]}
            partner = masks[(other, seed)]
            both = gate.passed and gates[(other, seed)].passed
            excess = overlap_excess(mask, partner) if both else {"iou": NAN, "iomin": NAN}
            rows += [
                (name, seed, "subnetwork_score", other, _lepori(acc[name][0], acc[other][0], gate, floors)),
                (name, seed, "ablation_score", other, _lepori(acc[name][1], acc[other][1], gate, floors)),
                (name, seed, "iou", other, mask.iou(partner) if both else NAN),
                (name, seed, "iomin", other, mask.iomin(partner) if both else NAN),
                (name, seed, "iou_excess", other, excess["iou"]),
                (name, seed, "iomin_excess", other, excess["iomin"]),
            ]
    base_masks: dict[tuple[str, int], Mask] = {}
    base_gates: dict[tuple[str, int], Faithfulness] = {}
    if base is not None:
        base_means = _means(base, reference, scored_with)
        with torch.no_grad():
            base_full = {n: float(metric(base.logits(b.tokens), b)) for n, b in evaluation.items()}
        for (name, seed), mask in masks.items():
            fitted = fit_mask(base, data[name][0], seed=seed, reference=base_means, **fit_args)
            gate = check_faithfulness(
                base, fitted, evaluation[name], reference=base_means, seed=seed, full=base_full[name], **gate_args
            )
            base_masks[(name, seed)], base_gates[(name, seed)] = fitted, gate
            rows.append((name, seed, "base_faithful", None, float(gate.passed)))
            both = gate.passed and gates[(name, seed)].passed
            overlap = circuit_overlap(fitted, mask) if both else dict.fromkeys(OVERLAPS, NAN)
            excess = overlap_excess(fitted, mask) if both else dict.fromkeys(OVERLAPS, NAN)
            rows += [(name, seed, f"inheritance_{key}", None, value) for key, value in overlap.items()]
            rows += [(name, seed, f"inheritance_{key}_excess", None, value) for key, value in excess.items()]
    frame = pd.DataFrame(rows, columns=COLUMNS)
    frame = pd.concat([frame, _summary_rows(frame, masks, gates, base_gates)], ignore_index=True)
    frame["seed"] = frame["seed"].astype("Int64")
    return ModularityResult(frame, masks, gates, base_masks, base_gates)


def _means(model: Model, reference: Batch | None, replacement: Replacement) -> MeanBaseline | None:
    """The model's mean baseline over the reference batch, computed once (None: each call's own batch)."""
    if reference is None or replacement != "mean":
        return None
    return mean_baseline(model, reference)


def _lepori(target: float, other: float, gate: Faithfulness, floors: dict[str, float]) -> float:
    return lepori_score(target, other, **floors) if gate.passed else NAN


def _summary_rows(
    frame: pd.DataFrame,
    masks: Mapping[tuple[str, int], Mask],
    gates: Mapping[tuple[str, int], Faithfulness],
    base_gates: Mapping[tuple[str, int], Faithfulness],
) -> pd.DataFrame:
    rows: list[tuple[Any, ...]] = []
    for name in dict.fromkeys(n for n, _ in masks):
        keys = [k for k in masks if k[0] == name]
        faithful = [masks[k] for k in keys if gates[k].passed]
        rows.append((name, None, "consistency", None, mask_consistency(faithful)))
        mine = frame[(frame["subroutine"] == name) & frame["metric"].isin(["subnetwork_score", "ablation_score"])]
        scored = mine.dropna(subset=["value"])
        wide = scored.pivot_table(index=["seed", "evaluated_on"], columns="metric", values="value")
        rate = compositionality_rate(wide) if {"subnetwork_score", "ablation_score"} <= set(wide.columns) else NAN
        rows.append((name, None, "compositionality_rate", None, rate))
        rows.append((name, None, "rejection_rate", None, float(np.mean([not gates[k].passed for k in keys]))))
        if base_gates:
            rejected = [not base_gates[k].passed for k in keys]
            rows.append((name, None, "base_rejection_rate", None, float(np.mean(rejected))))
    return pd.DataFrame(rows, columns=COLUMNS)
