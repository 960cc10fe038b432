"""Weight disentanglement of task vectors (Ortiz-Jiménez, Favero, Frossard 2023)."""

import copy
from collections.abc import Mapping, Sequence

import pandas as pd
import torch

from modlens.errors import ModlensError
from modlens.models.model import Model, check_pair
from modlens.tasks.batch import Batch


@torch.no_grad()
def _predictions(hf: torch.nn.Module, batch: Batch) -> torch.Tensor:
    """Argmax prediction of every answer token, flattened per example ``[batch, n_answer]``."""
    logits = hf(batch.tokens).logits[:, :-1]
    mask = batch.answer_mask[:, 1:]
    return torch.where(mask, logits.argmax(-1), -1)


@torch.no_grad()
def weight_disentanglement(
    base: Model,
    tuned: Mapping[str, Model],
    batches: Mapping[str, Batch],
    *,
    alphas: Sequence[float] = (0.0, 0.5, 1.0, 1.5, 2.0),
) -> pd.DataFrame:
    """Disentanglement error of two task vectors over an α grid.

    With ``τ_t = θ_t − θ_0``: ``ξ(α1, α2) = Σ_t mean_{x ∈ D_t} 1[f(x; θ_0 + α_t τ_t) ≠ f(x; θ_0 + α1 τ1 + α2 τ2)]``,
    where ``f`` is the whole-answer prediction. 0 means adding the other task's vector never changes
    this task's predictions.

    Args:
        base: the pretrained model ``θ_0``.
        tuned: exactly two fine-tuned models, by task name.
        batches: evaluation batches for the same two task names.
        alphas: the grid of scaling coefficients for each task vector.

    Returns:
        One row per ``(alpha_1, alpha_2)``: ``alpha_1, alpha_2, error`` plus ``error_<task>`` per task.
    """
    names = list(tuned)
    if len(names) != 2 or set(names) != set(batches):
        raise ModlensError(f"weight disentanglement needs two tuned models and their batches; got {names}")
    for model in tuned.values():
        check_pair(base, model)
    theta0 = {k: v.clone() for k, v in base.hf.state_dict().items()}
    taus = {n: {k: v - theta0[k] for k, v in tuned[n].hf.state_dict().items() if v.is_floating_point()} for n in names}
    work = copy.deepcopy(base.hf).eval()

    def predict(coeffs: dict[str, float], batch: Batch) -> torch.Tensor:
        edited = dict(theta0)
        for n, a in coeffs.items():
            for k, t in taus[n].items():
                edited[k] = edited[k] + a * t
        work.load_state_dict(edited)
        return _predictions(work, batch)

    single = {(n, a): predict({n: a}, batches[n]) for n in names for a in alphas}
    rows = []
    for a1 in alphas:
        for a2 in alphas:
            coeffs = {names[0]: a1, names[1]: a2}
            errors = {}
            for n in names:
                joint = predict(coeffs, batches[n])
                errors[n] = float((joint != single[(n, coeffs[n])]).any(dim=1).float().mean())
            rows.append(
                {"alpha_1": a1, "alpha_2": a2, "error": sum(errors.values())}
                | {f"error_{n}": e for n, e in errors.items()}
            )
    return pd.DataFrame(rows)
