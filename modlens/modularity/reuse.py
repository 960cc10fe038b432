"""Reuse: does a composite run through a subroutine's part? Ablate the part, compare composites with and without it.

The primary mechanistic metric of the study (RESEARCH.md §5; Csordás et al.'s P_reuse, applied to composites):
mask subroutine ``f`` (typically on the base checkpoint), ablate that mask in the model under test, and compare
the accuracy drop on composites that contain ``f`` with the drop on composites that do not. A large, specific
drop means the composites containing ``f`` are computed through ``f``'s part.
"""

from collections.abc import Callable, Iterable, Mapping

import numpy as np
import pandas as pd
import torch

from modlens._typing import Tensor
from modlens.interventions.replacements import Replacement
from modlens.masks.apply import Reference, masked_logits
from modlens.masks.mask import Mask, MaskError
from modlens.models.model import Model
from modlens.tasks.batch import Batch
from modlens.tasks.metrics import Metric, answer_accuracy

REUSE_COLUMNS = ["composite", "contains_f", "full", "ablated", "drop"]


@torch.no_grad()
def run_reuse(
    model: Model,
    mask: Mask,
    with_f: Mapping[str, Batch],
    without_f: Mapping[str, Batch],
    *,
    reference: Reference,
    replacement: Replacement = "mean",
    metric: Metric = answer_accuracy,
    full: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """Accuracy drop on every composite when ``mask`` is ablated in ``model``.

    The mask may come from another model of the same shape (the base checkpoint's mask of ``f``, ablated in
    its fine-tuned model); it is checked with ``Mask.check_fits``. Composites of one sequence length share
    one forward pass (and one more for the full model unless ``full`` is given). ``reuse_specificity`` turns
    the frame into the scalar.

    Args:
        model: the model the mask is ablated in.
        mask: the units of ``f``'s part (see ``specific_part`` for the variant without shared units).
        with_f: composites that contain ``f``, by name.
        without_f: composites that do not, by name (names distinct from ``with_f``'s).
        reference: what mean ablation takes its means over: one fixed batch (or its ``mean_baseline`` on
            ``model``) of the composites' sequence length, the same for every mask compared.
        replacement: what ablated units become.
        metric: the accuracy metric.
        full: the full model's ``metric`` per composite, if already computed (saves a forward pass).

    Returns:
        One row per composite: ``composite, contains_f, full, ablated, drop`` (``drop = full - ablated``).

    Raises:
        MaskError: the mask does not fit the model, a name appears on both sides, or a side is empty.
    """
    mask.check_fits(model.spec)
    if not with_f or not without_f:
        raise MaskError("the reuse test compares composites with and without f: give at least one of each")
    both = set(with_f) & set(without_f)
    if both:
        raise MaskError(f"composites listed both with and without f: {sorted(both)}")
    batches = {**with_f, **without_f}

    def ablated_logits(batch: Batch) -> Tensor:
        return masked_logits(model, mask, batch, keep="outside", replacement=replacement, reference=reference)

    ablated = _per_composite(batches, metric, ablated_logits)
    if full is None:
        full = _per_composite(batches, metric, lambda b: model.logits(b.tokens))
    rows = [(name, name in with_f, full[name], ablated[name], full[name] - ablated[name]) for name in batches]
    return pd.DataFrame(rows, columns=REUSE_COLUMNS)


def reuse_specificity(drops: pd.DataFrame) -> float:
    """Mean drop over composites containing ``f`` minus the mean drop over those without (from ``run_reuse``).

    Near 1: ablating ``f``'s part breaks exactly the composites that contain ``f`` (they run through it).
    Near 0: the composites do not depend on it more than any other task does. NaN when a side is empty.
    """
    with_f = drops.loc[drops["contains_f"].astype(bool), "drop"]
    without_f = drops.loc[~drops["contains_f"].astype(bool), "drop"]
    if with_f.empty or without_f.empty:
        return float("nan")
    return float(with_f.mean() - without_f.mean())


def specific_part(mask: Mask, others: Iterable[Mask]) -> Mask:
    """``mask`` without the units it shares with any of ``others`` (the other subroutines' masks).

    A subroutine's mask usually also holds generic machinery (reading positions, copying) that every task
    needs; ablating it breaks composites with and without ``f`` alike and hides any specificity. Its
    specific part removes exactly what is shared. The trade-off: units ``f`` genuinely shares with another
    subroutine leave with the generic ones, so the specific part can under-count reuse, and it may be too
    small to break ``f`` at all (check its drop on ``f``'s own prompts before reading its specificity).
    Report both variants.
    """
    out = mask
    for other in others:
        out = out - other
    return out.replace(out.units, specific_part=True)


def _per_composite(
    batches: Mapping[str, Batch], metric: Metric, logits_of: Callable[[Batch], Tensor]
) -> dict[str, float]:
    """``metric`` per named batch, batches of one sequence length stacked into one forward pass."""
    out: dict[str, float] = {}
    by_length: dict[int, list[str]] = {}
    for name, batch in batches.items():
        by_length.setdefault(batch.n_pos, []).append(name)
    for names in by_length.values():
        stacked = Batch.concat([batches[n] for n in names])
        logits = logits_of(stacked)
        bounds = np.cumsum([0] + [len(batches[n]) for n in names])
        for i, name in enumerate(names):
            out[name] = float(metric(logits[bounds[i] : bounds[i + 1]], batches[name]))
    return out
