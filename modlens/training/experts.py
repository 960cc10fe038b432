"""Mixing fine-tuned experts: SVF scale vectors (Transformer²) and, for comparison, full fine-tuning task vectors,
with their accuracy on each expert's own tasks and on composites across them (interference as a number)."""

import copy
from collections.abc import Mapping, Sequence

import pandas as pd
import torch

from modlens.errors import ConfigError
from modlens.models.model import Model
from modlens.tasks.batch import Batch
from modlens.tasks.metrics import answer_accuracy
from modlens.training.methods.svf import Scales, apply_scales

TaskVector = dict[str, torch.Tensor]
"""A full fine-tune's change: parameter name -> tuned weight − base weight (Ilharco et al. 2023)."""


def mix_scales(experts: Sequence[Scales], weights: Sequence[float] | None = None) -> Scales:
    """``z = Σ_k w_k z_k`` per matrix (Transformer²'s linear mix; ``weights`` default to ``1 / k`` each).

    Raises:
        ConfigError: no experts, experts over different matrices, or one weight per expert missing.
    """
    weights = _weights(len(experts), weights)
    names = {tuple(sorted(e)) for e in experts}
    if len(names) != 1:
        raise ConfigError("SVF experts to mix must scale the same matrices")
    mixed: Scales = {}
    for name in experts[0]:
        mixed[name] = torch.stack([w * e[name] for w, e in zip(weights, experts, strict=True)]).sum(0)
    return mixed


def task_vector(base: Model, tuned: Model) -> TaskVector:
    """``tuned − base`` for every parameter (the two must share an architecture)."""
    before, after = base.hf.state_dict(), tuned.hf.state_dict()
    if set(before) != set(after):
        raise ConfigError("task vectors need two models with the same parameters")
    return {k: (after[k] - before[k]).detach().clone() for k in before}


@torch.no_grad()
def add_task_vectors(
    base: Model, vectors: Sequence[TaskVector], weights: Sequence[float] | None = None, *, source: str | None = None
) -> Model:
    """A copy of ``base`` plus ``Σ_k w_k τ_k`` (``weights`` default to ``1 / k`` each, as ``mix_scales``)."""
    weights = _weights(len(vectors), weights)
    hf = copy.deepcopy(base.hf)
    state = hf.state_dict()
    # tied weights (GPT-2's embedding and unembedding) appear under two names but must move once
    first: dict[int, str] = {}
    for name, tensor in state.items():
        first.setdefault(tensor.data_ptr(), name)
    for w, vector in zip(weights, vectors, strict=True):
        for name, delta in vector.items():
            if first[state[name].data_ptr()] == name:
                state[name].add_(w * delta.to(state[name].device))
    return base.with_weights(hf, source=source or f"{base.source}+task-vectors")


@torch.no_grad()
def run_composability(
    base: Model,
    svf: Mapping[str, Scales],
    full: Mapping[str, Model],
    batches: Mapping[str, Batch],
    *,
    weights: Sequence[float] | None = None,
) -> pd.DataFrame:
    """Accuracy of each expert alone and of their mix, for SVF scales and full-fine-tuning task vectors alike.

    Args:
        base: the model every expert was fine-tuned from.
        svf: expert name -> its learned SVF scales (``FinetuneResult.adapter`` of ``method="svf"``).
        full: the same expert names -> their fully fine-tuned models.
        batches: evaluation batches by group: each expert's own tasks (keyed by the expert's name) and any others
            (composites across the experts' tasks, the pretraining primitives, ...).
        weights: mixing weights, one per expert in ``svf``'s order (default ``1 / k`` each).

    Returns:
        One row per ``method`` (``"svf"``, ``"full"``), ``model`` (an expert's name, ``"base"`` or ``"mix"``) and
        ``group`` (a key of ``batches``), with ``answer_accuracy``. ``interference`` summarises it.
    """
    if set(svf) != set(full) or not svf:
        raise ConfigError(f"svf and full must name the same experts, got {sorted(svf)} and {sorted(full)}")
    names = list(svf)
    models: dict[tuple[str, str], Model] = {("svf", "base"): base, ("full", "base"): base}
    for name in names:
        models["svf", name] = apply_scales(base, svf[name], source=f"{base.source}+svf:{name}")
        models["full", name] = full[name]
    models["svf", "mix"] = apply_scales(base, mix_scales([svf[n] for n in names], weights), source="svf-mix")
    vectors = [task_vector(base, full[n]) for n in names]
    models["full", "mix"] = add_task_vectors(base, vectors, weights, source="task-vector-mix")
    rows = [
        {"method": method, "model": model_name, "group": group, "answer_accuracy": _accuracy(model, batch)}
        for (method, model_name), model in models.items()
        for group, batch in batches.items()
    ]
    return pd.DataFrame(rows)


def interference(frame: pd.DataFrame) -> pd.DataFrame:
    """Per method and expert: the mix's accuracy on the expert's own group minus the expert's (negative = the
    other expert interferes). One row per ``method`` and ``expert``: ``alone``, ``mixed``, ``interference``."""
    acc = frame.set_index(["method", "model", "group"])["answer_accuracy"]
    experts = [m for m in frame["model"].unique() if m not in ("base", "mix") and m in set(frame["group"])]
    rows = []
    for method in frame["method"].unique():
        for expert in experts:
            alone, mixed = float(acc[method, expert, expert]), float(acc[method, "mix", expert])
            rows.append(
                {"method": method, "expert": expert, "alone": alone, "mixed": mixed, "interference": mixed - alone}
            )
    return pd.DataFrame(rows)


def _accuracy(model: Model, batch: Batch) -> float:
    return float(answer_accuracy(model.logits(batch.tokens), batch.to(model.device)))


def _weights(k: int, weights: Sequence[float] | None) -> list[float]:
    if k == 0:
        raise ConfigError("mixing needs at least one expert")
    if weights is None:
        return [1.0 / k] * k
    if len(weights) != k:
        raise ConfigError(f"mixing {k} experts needs {k} weights, got {len(weights)}")
    return [float(w) for w in weights]
