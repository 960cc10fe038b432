"""Behavioural modularity of a fine-tuned model: does it reuse the parts (unseen pairs), did it keep them?"""

import math

import torch

from modlens.faithfulness import LogitModel
from modlens.study.tasks import StudyTasks
from modlens.tasks.metrics import answer_accuracy

# Retention is a ratio of accuracies; below this base accuracy it measures noise, so it is left undefined.
MIN_BASE_ACCURACY_FOR_RETENTION = 0.1


@torch.no_grad()
def accuracies(model: LogitModel, tasks: StudyTasks) -> dict[str, float]:
    """Whole-answer accuracy on the test splits of the primitives, the fine-tuning and the held-out pairs."""
    out = {}
    for kind in ("primitives", "finetune", "heldout"):
        batch = tasks.test(kind)
        out[kind] = float(answer_accuracy(model.logits(batch.tokens), batch))
    return out


def behaviour_metrics(tuned: LogitModel, base_accuracy: dict[str, float], tasks: StudyTasks) -> dict[str, float]:
    """``heldout_composite_accuracy`` (unseen pairs: are the parts reused?), ``finetune_composite_accuracy``,
    ``primitive_accuracy_after`` and ``primitive_retention`` (after / before; were the parts kept?)."""
    after = accuracies(tuned, tasks)
    before = base_accuracy["primitives"]
    return {
        "heldout_composite_accuracy": after["heldout"],
        "finetune_composite_accuracy": after["finetune"],
        "primitive_accuracy_after": after["primitives"],
        "primitive_retention": (
            after["primitives"] / before if before >= MIN_BASE_ACCURACY_FOR_RETENTION else math.nan
        ),
    }
