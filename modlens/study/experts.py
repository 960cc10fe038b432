"""Experts for two halves of the fine-tuning tasks, fine-tuned apart and then combined: the weight disentanglement of
their task vectors, and how their SVF scale vectors mix next to their full-fine-tuning task vectors (interference)."""

import numpy as np

from modlens.models.model import Model
from modlens.modularity.disentanglement import weight_disentanglement
from modlens.study.finetuning import finetune_config
from modlens.study.tasks import StudyTasks
from modlens.tasks.batch import Batch
from modlens.tasks.synthetic import SyntheticTask, sample_mixture
from modlens.training.experts import interference, run_composability
from modlens.training.finetune import FinetuneResult, finetune
from modlens.training.methods import Method, method_named

EXPERT_MIXING = (
    "expert_interference_svf",
    "expert_interference_full",
    "expert_mix_heldout_accuracy_svf",
    "expert_mix_heldout_accuracy_full",
)
"""The mixing metrics: mean (mix − expert alone) accuracy on each expert's own half, and the mix's accuracy on the
held-out composites, for SVF scale vectors and for full-fine-tuning task vectors."""

_HALVES_SEED = 4


def halves(tasks: StudyTasks) -> dict[str, list[SyntheticTask]]:
    """The fine-tuning composites split in two groups, ``A`` and ``B``."""
    middle = len(tasks.finetune) // 2
    return {"A": tasks.finetune[:middle], "B": tasks.finetune[middle:]}


def half_batches(tasks: StudyTasks) -> dict[str, Batch]:
    """``n_eval`` test examples of each half."""
    n = tasks.study.n_eval
    return {name: sample_mixture(ts, n, split="test", seed=_HALVES_SEED) for name, ts in halves(tasks).items()}


def half_experts(base: Model, tasks: StudyTasks, lr: float, method: Method) -> dict[str, FinetuneResult[Model]]:
    """One fine-tune of ``base`` per half, at ``lr`` for ``finetune.max_steps`` (no early stop at the target)."""
    replay, weights = tasks.replay
    config = finetune_config(tasks.study, lr, tasks.study.finetune.max_steps)
    return {
        name: finetune(base, ts, config, method=method, replay=replay, replay_weights=weights, progress=False)
        for name, ts in halves(tasks).items()
    }


def disentanglement_error(base: Model, tasks: StudyTasks, lr: float, method: Method) -> float:
    """Mean disentanglement error over the α grid for the task vectors of the two halves."""
    tuned = {name: result.model for name, result in half_experts(base, tasks, lr, method).items()}
    grid = weight_disentanglement(base, tuned, half_batches(tasks), alphas=tasks.study.disentanglement_alphas)
    return float(grid["error"].mean())


def expert_mixing(base: Model, tasks: StudyTasks, lr: float) -> dict[str, float]:
    """``EXPERT_MIXING``: the halves' SVF experts mixed (``z = (z_A + z_B) / 2``) and their full fine-tunes'
    task vectors averaged, each scored on both halves and on the held-out composites."""
    svf = {name: result.adapter for name, result in half_experts(base, tasks, lr, method_named("svf")).items()}
    full = {name: result.model for name, result in half_experts(base, tasks, lr, method_named("full")).items()}
    frame = run_composability(base, svf, full, {**half_batches(tasks), "heldout": tasks.test("heldout")})
    lost = interference(frame).groupby("method")["interference"].mean()
    mixed = frame[(frame["model"] == "mix") & (frame["group"] == "heldout")].set_index("method")["answer_accuracy"]
    out = {}
    for method in ("svf", "full"):
        out[f"expert_interference_{method}"] = float(lost.get(method, np.nan))
        out[f"expert_mix_heldout_accuracy_{method}"] = float(mixed.get(method, np.nan))
    return out
