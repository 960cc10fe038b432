"""Specialization scores of a mask: Lepori's subnetwork and ablation scores, Csordás's inverse-mask drops,
and faithfulness against a same-size random circuit."""

from collections.abc import Mapping

import pandas as pd
import torch

from modlens.interventions.replacements import Replacement
from modlens.masks.apply import Keep, Reference, masked_scores
from modlens.masks.chance import chance_accuracy
from modlens.masks.mask import Mask
from modlens.models.model import Model
from modlens.tasks.batch import Batch
from modlens.tasks.metrics import Metric, answer_accuracy, token_accuracy


def chance_for(metric: Metric, batch: Batch) -> float:
    """Chance level of an accuracy metric on a batch (per token for ``token_accuracy``, else whole answers)."""
    return chance_accuracy(batch, whole_answer=metric is not token_accuracy)


def lepori_score(target: float, other: float, *, chance_target: float, chance_other: float) -> float:
    """``max(target, c_target) − max(other, c_other)``: accuracies floored at chance, then differenced."""
    return max(target, chance_target) - max(other, chance_other)


@torch.no_grad()
def masked_accuracy(
    model: Model,
    mask: Mask,
    batch: Batch,
    *,
    keep: Keep = "inside",
    replacement: Replacement = "mean",
    metric: Metric = answer_accuracy,
    reference: Reference | None = None,
) -> float:
    """The metric of the model run with only the mask (``keep="inside"``) or without it (``"outside"``).

    Removed units take zero (``replacement="zero"``) or their mean (``"mean"``, per position) over ``reference``:
    a fixed batch, or its means from ``mean_baseline``. Without a reference the means are taken over
    ``batch`` itself, so two batches scored under one mask get different baselines; pass the reference the
    mask was fitted with to score every batch against the same one.
    """
    (score,) = masked_scores(
        model, [mask], batch, keep=keep, replacement=replacement, metric=metric, reference=reference
    )
    return score


def subnetwork_score(
    model: Model,
    mask: Mask,
    target: Batch,
    other: Batch,
    *,
    replacement: Replacement = "mean",
    metric: Metric = answer_accuracy,
    reference: Reference | None = None,
) -> float:
    """Lepori et al.'s subnetwork score: the subnetwork alone does its own subroutine and not the other.

    ``max(acc_sub(target), c) − max(acc_sub(other), c)``; expected > 0 for a mask of the target subroutine.
    Means over ``reference`` (default: each scored batch itself; see ``masked_accuracy``).
    """
    return _masked_lepori(
        model, mask, target, other, keep="inside", replacement=replacement, metric=metric, reference=reference
    )


def ablation_score(
    model: Model,
    mask: Mask,
    target: Batch,
    other: Batch,
    *,
    replacement: Replacement = "mean",
    metric: Metric = answer_accuracy,
    reference: Reference | None = None,
) -> float:
    """Lepori et al.'s ablation score: removing the subnetwork breaks its subroutine and spares the other.

    ``max(acc_abl(target), c) − max(acc_abl(other), c)``; expected < 0 for a modular model.
    Means over ``reference`` (default: each scored batch itself; see ``masked_accuracy``).
    """
    return _masked_lepori(
        model, mask, target, other, keep="outside", replacement=replacement, metric=metric, reference=reference
    )


def _masked_lepori(
    model: Model,
    mask: Mask,
    target: Batch,
    other: Batch,
    *,
    keep: Keep,
    replacement: Replacement,
    metric: Metric,
    reference: Reference | None,
) -> float:
    """The Lepori difference of masked accuracies on the target and the other subroutine."""
    acc_t = masked_accuracy(model, mask, target, keep=keep, replacement=replacement, metric=metric, reference=reference)
    acc_o = masked_accuracy(model, mask, other, keep=keep, replacement=replacement, metric=metric, reference=reference)
    return lepori_score(acc_t, acc_o, chance_target=chance_for(metric, target), chance_other=chance_for(metric, other))


@torch.no_grad()
def inverse_mask_drops(
    model: Model,
    mask: Mask,
    batches: Mapping[str, Batch],
    *,
    replacement: Replacement = "mean",
    metric: Metric = answer_accuracy,
    reference: Reference | None = None,
) -> pd.DataFrame:
    """Csordás et al.'s specialization test: accuracy drop on every subroutine when the mask is removed.

    Means over ``reference`` (default: each scored batch itself; see ``masked_accuracy``).

    Returns:
        One row per subroutine: ``evaluated_on, full, ablated, drop`` (``drop = full − ablated``).
    """
    rows = []
    for name, batch in batches.items():
        full = float(metric(model.logits(batch.tokens), batch))
        ablated = masked_accuracy(
            model, mask, batch, keep="outside", replacement=replacement, metric=metric, reference=reference
        )
        rows.append((name, full, ablated, full - ablated))
    return pd.DataFrame(rows, columns=["evaluated_on", "full", "ablated", "drop"])


def random_controls(mask: Mask, n_random: int, seed: int) -> list[Mask]:
    """``n_random`` random masks with as many units as ``mask`` in every group (``Mask.random_like``).

    Draw ``i`` of seed ``s`` uses ``random_like(s * 1_000_003 + i)``, so the controls of masks fitted with
    different seeds never share draws.
    """
    return [mask.random_like(seed * 1_000_003 + i) for i in range(n_random)]


@torch.no_grad()
def faithfulness(
    model: Model,
    mask: Mask,
    batch: Batch,
    *,
    n_random: int = 5,
    seed: int = 0,
    replacement: Replacement = "mean",
    metric: Metric = answer_accuracy,
    reference: Reference | None = None,
) -> pd.DataFrame:
    """Metric with everything outside the circuit removed, over the full model's (Prakash et al. 2024),
    beside random circuits of the same size per layer group (``Mask.random_like``).

    ``check_faithfulness`` turns these measurements into the gate's verdict.

    Returns:
        Rows ``circuit`` (``"mask"`` or ``"random"``), ``draw``, ``score``, ``full``, ``faithfulness``
        (``score / full``; NaN when the full model scores 0).
    """
    full = float(metric(model.logits(batch.tokens), batch))
    circuits = [("mask", 0, mask)] + [("random", i, c) for i, c in enumerate(random_controls(mask, n_random, seed))]
    scores = masked_scores(
        model,
        [c for _, _, c in circuits],
        batch,
        keep="inside",
        replacement=replacement,
        metric=metric,
        reference=reference,
    )
    rows = [
        (kind, draw, score, full, score / full if full else float("nan"))
        for (kind, draw, _), score in zip(circuits, scores, strict=True)
    ]
    return pd.DataFrame(rows, columns=["circuit", "draw", "score", "full", "faithfulness"])
