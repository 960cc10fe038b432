"""The faithfulness gate: a mask is scored only if it reproduces its task and a random circuit does not.

A mask that keeps too little of the model's accuracy, or no more than a random set of as many units, measures
the optimiser, not the model (RESEARCH.md §5). Faithfulness follows Prakash et al. (2024): accuracy of the
model with everything outside the circuit mean-ablated, over the full model's accuracy.
"""

from dataclasses import dataclass

import torch

from modlens.interventions.replacements import Replacement
from modlens.masks.apply import Reference, masked_scores
from modlens.masks.chance import chance_margin
from modlens.masks.mask import Mask, MaskError
from modlens.models.model import Model
from modlens.modularity.scores import chance_for, random_controls
from modlens.tasks.batch import Batch
from modlens.tasks.metrics import Metric, answer_accuracy


@dataclass(frozen=True)
class Faithfulness:
    """The gate's measurements and verdict.

    Attributes:
        full: the full model's accuracy on the batch.
        chance: the accuracy of uniform guessing among the answers seen at each position.
        kept: accuracy of the model restricted to the mask (everything outside it ablated).
        ratio: ``kept / full`` (NaN when ``full`` is 0).
        random_ratios: the same ratio for each random mask with as many units in each unit group.
        passed: whether the mask may be scored.
        reason: why it failed, in one phrase (empty when it passed).
    """

    full: float
    chance: float
    kept: float
    ratio: float
    random_ratios: tuple[float, ...]
    passed: bool
    reason: str

    @property
    def best_random(self) -> float:
        """The highest ratio a random circuit of the same size reached (NaN without random circuits)."""
        return max(self.random_ratios, default=float("nan"))


@torch.no_grad()
def check_faithfulness(
    model: Model,
    mask: Mask,
    batch: Batch,
    *,
    reference: Reference | None = None,
    n_random: int = 5,
    min_kept: float = 0.8,
    min_margin: float = 0.2,
    seed: int = 0,
    replacement: Replacement = "mean",
    metric: Metric = answer_accuracy,
    full: float | None = None,
) -> Faithfulness:
    """Whether ``mask`` is a faithful circuit of the task in ``batch``.

    It passes when (1) the full model scores above chance (by more than ``chance_margin``: with nothing
    learned there is nothing to localize), (2) the model with everything outside the mask ablated keeps at
    least ``min_kept`` of the full accuracy, and (3) none of ``n_random`` random masks with as many kept
    units in every group (each layer's heads, each layer's neurons; ``Mask.random_like``) keeps more than
    ``ratio - min_margin``. A full mask keeps 1.0 but so do its random copies: it fails (3), as it should.

    The mask and its random copies run in one stacked forward pass (component masks); pass the full
    accuracy as ``full`` when it is already known to save another.

    Args:
        model: the model the mask is scored on.
        mask: the circuit.
        batch: held-out examples of its task.
        reference: what mean ablation takes its means over: the fixed reference batch (or its
            ``mean_baseline``) the mask was fitted with (default: ``batch`` itself).
        n_random: random circuits drawn (the study's gate uses at least 5).
        min_kept: the least fraction of the full accuracy the circuit must keep.
        min_margin: how much more than the best random circuit it must keep (as a fraction of full accuracy).
        seed: seed of the random circuits.
        replacement: what removed units become.
        metric: the accuracy metric (chance follows it: per token for ``token_accuracy``).
        full: the full model's ``metric`` on ``batch``, if already computed.

    Raises:
        MaskError: ``n_random`` below 1, or a mask that does not fit the model.
    """
    if n_random < 1:
        raise MaskError(f"the faithfulness gate needs at least one random circuit, got n_random={n_random}")
    if full is None:
        full = float(metric(model.logits(batch.tokens), batch))
    chance = chance_for(metric, batch)
    circuits = [mask, *random_controls(mask, n_random, seed)]
    kept, *random_kept = masked_scores(
        model, circuits, batch, keep="inside", replacement=replacement, metric=metric, reference=reference
    )
    ratio = kept / full if full > 0 else float("nan")
    randoms = tuple(r / full if full > 0 else float("nan") for r in random_kept)
    best = max(randoms)
    reason = ""
    if full <= chance + chance_margin(chance, len(batch)):
        reason = f"full model at chance ({full:.2f}, chance {chance:.2g})"
    elif ratio < min_kept:
        reason = f"keeps {ratio:.2f} of full accuracy (< {min_kept})"
    elif best > ratio - min_margin:
        reason = f"a random circuit of the same size keeps {best:.2f}, not clearly less (margin {min_margin})"
    return Faithfulness(full, chance, kept, ratio, randoms, not reason, reason)
