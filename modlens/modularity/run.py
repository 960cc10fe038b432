"""``run_modularity``: fit masks for several subroutines over seeds and measure every modularity metric."""

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import torch

from modlens.masks.apply import Replacement
from modlens.masks.fit import MethodName, fit_mask
from modlens.masks.mask import Granularity, Mask, MaskError
from modlens.models.model import Model, check_pair
from modlens.modularity.overlap import circuit_overlap, compositionality_rate, mask_consistency
from modlens.modularity.scores import chance_for, lepori_score, masked_accuracy
from modlens.tasks.batch import Batch
from modlens.tasks.metrics import Metric, answer_accuracy
from modlens.tasks.synthetic import SyntheticTask

Subroutine = SyntheticTask | Batch
COLUMNS = ["subroutine", "seed", "metric", "evaluated_on", "value"]


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
    method: MethodName = "continuous_sparsification",
    sparsity: float = 0.5,
    steps: int = 200,
    ablation: Replacement = "mean",
    n_fit: int = 256,
    n_eval: int = 256,
    n_random: int = 3,
    base: Model | None = None,
    metric: Metric = answer_accuracy,
    progress: bool = False,
) -> pd.DataFrame:
    """Fits a mask per subroutine and seed, and measures specialization, reuse, consistency and inheritance.

    Args:
        model: the model to analyse.
        subroutines: at least two subroutines by name: synthetic tasks (fit on the train split, evaluated
            on the test split) or batches (fit on the first half, evaluated on the second).
        seeds: mask seeds.
        granularity, method, sparsity, steps, ablation: passed to ``fit_mask``. Evaluation replaces
            removed units the same way (weight masks: zero).
        n_fit, n_eval: examples sampled per synthetic task for fitting and evaluation.
        n_random: same-size random circuits in the faithfulness baseline.
        base: the pretrained model this one was fine-tuned from; masks are fitted on it too, and the
            overlap of base and tuned masks is reported (inheritance).
        metric: the accuracy metric (chance levels follow it).
        progress: show progress bars while fitting.

    Returns:
        A long frame ``subroutine, seed, metric, evaluated_on, value``. Per (subroutine, seed):
        ``size``, ``density``, ``accuracy_full``, ``accuracy_inside`` / ``accuracy_outside`` / ``drop``
        per evaluated subroutine, ``subnetwork_score`` and ``ablation_score`` (Lepori) against each other
        subroutine, ``iou`` / ``iomin`` with the other subroutine's mask of the same seed, ``faithfulness``
        and ``faithfulness_random``; with ``base``, ``inheritance_precision`` / ``_recall`` / ``_iou``.
        Per subroutine (``seed`` missing): ``consistency`` (mean IoU across seeds) and
        ``compositionality_rate``. The masks are in ``frame.attrs["masks"]`` keyed ``(subroutine, seed)``
        (and ``frame.attrs["base_masks"]`` with ``base``).
    """
    if len(subroutines) < 2:
        raise MaskError(f"modularity compares subroutines: give at least two, got {list(subroutines)}")
    if not seeds:
        raise MaskError("give at least one mask seed")
    if base is not None:
        check_pair(base, model)
    data = {name: _split(sub, n_fit, n_eval) for name, sub in subroutines.items()}
    evaluation = {name: ev for name, (_, ev) in data.items()}
    eval_method: Replacement = ablation if granularity == "component" else "zero"
    fit_args: dict[str, Any] = {
        "granularity": granularity,
        "method": method,
        "sparsity": sparsity,
        "steps": steps,
        "ablation": ablation,
        "progress": progress,
    }
    masks = {(n, s): fit_mask(model, fit, seed=s, **fit_args) for n, (fit, _) in data.items() for s in seeds}
    rows: list[tuple[Any, ...]] = []
    with torch.no_grad():
        full = {n: float(metric(model.logits(b.tokens), b)) for n, b in evaluation.items()}
        chance = {n: chance_for(metric, b) for n, b in evaluation.items()}
    for (name, seed), mask in masks.items():
        rows += [(name, seed, "size", None, mask.size), (name, seed, "density", None, mask.density)]
        acc = {}
        for other, batch in evaluation.items():
            inside = masked_accuracy(model, mask, batch, keep="inside", method=eval_method, metric=metric)
            outside = masked_accuracy(model, mask, batch, keep="outside", method=eval_method, metric=metric)
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
            rows += [
                (name, seed, "subnetwork_score", other, lepori_score(acc[name][0], acc[other][0], **floors)),
                (name, seed, "ablation_score", other, lepori_score(acc[name][1], acc[other][1], **floors)),
                (name, seed, "iou", other, mask.iou(masks[(other, seed)])),
                (name, seed, "iomin", other, mask.iomin(masks[(other, seed)])),
            ]
        rows += _faithfulness_rows(model, mask, name, seed, evaluation[name], full[name], n_random, eval_method, metric)
    base_masks: dict[tuple[str, int], Mask] = {}
    if base is not None:
        for (name, seed), mask in masks.items():
            base_masks[(name, seed)] = fit_mask(base, data[name][0], seed=seed, **fit_args)
            for key, value in circuit_overlap(base_masks[(name, seed)], mask).items():
                rows.append((name, seed, f"inheritance_{key}", None, value))
    frame = pd.DataFrame(rows, columns=COLUMNS)
    frame = pd.concat([frame, _summary_rows(frame, masks)], ignore_index=True)
    frame["seed"] = frame["seed"].astype("Int64")
    frame.attrs["masks"] = masks
    if base is not None:
        frame.attrs["base_masks"] = base_masks
    return frame


def _faithfulness_rows(
    model: Model,
    mask: Mask,
    name: str,
    seed: int,
    batch: Batch,
    full: float,
    n_random: int,
    method: Replacement,
    metric: Metric,
) -> list[tuple[Any, ...]]:
    def ratio(circuit: Mask) -> float:
        score = masked_accuracy(model, circuit, batch, keep="inside", method=method, metric=metric)
        return score / full if full else float("nan")

    randoms = [ratio(mask.random_like(1000 * seed + i)) for i in range(n_random)]
    mean_random = sum(randoms) / len(randoms) if randoms else float("nan")
    return [(name, seed, "faithfulness", name, ratio(mask)), (name, seed, "faithfulness_random", name, mean_random)]


def _summary_rows(frame: pd.DataFrame, masks: Mapping[tuple[str, int], Mask]) -> pd.DataFrame:
    rows = []
    for name in dict.fromkeys(n for n, _ in masks):
        rows.append(
            (name, None, "consistency", None, mask_consistency([m for (n, _), m in masks.items() if n == name]))
        )
        mine = frame[(frame["subroutine"] == name) & frame["metric"].isin(["subnetwork_score", "ablation_score"])]
        wide = mine.pivot_table(index=["seed", "evaluated_on"], columns="metric", values="value")
        rows.append((name, None, "compositionality_rate", None, compositionality_rate(wide)))
    return pd.DataFrame(rows, columns=COLUMNS)
