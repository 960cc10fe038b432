"""The unit functions of a sweep: one ablation sweep, one mask fit, or one drift measurement, as tidy rows.

Each is a module-level function of plain, picklable arguments (models and tasks as dicts, seeds as ints),
so any executor can run it, and each is deterministic in those arguments. Every row carries the unit's
coordinates (job, analysis, model, task, method, seed, ...) so the sweep's records concatenate into one
tidy frame.
"""

import functools
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from modlens.ablation import run_ablation_sweep
from modlens.components import SELECTIONS, parse_components, select_components
from modlens.drift import (
    check_tokenizers,
    run_activation_drift,
    run_weight_drift,
    summarize_activation_drift,
    summarize_weight_drift,
)
from modlens.errors import TaskError
from modlens.masks import fit_mask
from modlens.models import Model, check_pair, load_model
from modlens.models.loading import parse_dtype
from modlens.modularity import masked_accuracy
from modlens.tasks import METRICS, Batch, SyntheticTask, answer_accuracy, load_prompt_batch
from modlens.tasks.model_layout import task_layout_of

Row = dict[str, Any]


@functools.lru_cache(maxsize=2)
def cached_model(source: str, revision: str | None, device: str, dtype: str = "float32") -> Model:
    """A loaded model, kept while the next units of the same process use it (drift needs two at once).

    Models are read-only in every unit function, so sharing one between units changes no result.
    """
    return load_model(source, revision=revision, device=device, dtype=parse_dtype(dtype))


def _model(ref: Mapping[str, Any], device: str) -> Model:
    return cached_model(ref["source"], ref.get("revision"), device, ref.get("dtype", "float32"))


def task_batch(model: Model, task: Mapping[str, Any], *, n: int, seed: int, split: str = "test") -> Batch:
    """A synthetic task's ``split`` (``n`` examples drawn with ``seed``), or a whole prompts file."""
    if task.get("prompts"):
        return load_prompt_batch(task["prompts"], model.tokenizer, n_ctx=model.spec.n_ctx)
    layout = task_layout_of(model)
    if layout.seq_len > model.spec.n_ctx:
        raise TaskError(f"task sequences are {layout.seq_len} tokens, longer than the model's context")
    return SyntheticTask.from_name(task["name"], layout).sample(n, split=split, seed=seed)  # type: ignore[arg-type]


def records(frame: pd.DataFrame, coords: Mapping[str, Any], **extra: Any) -> list[Row]:
    """Rows of ``frame`` as plain dicts (missing values as None) led by the unit's coordinates."""
    plain = frame.astype(object).where(frame.notna(), None)
    return [{**coords, **extra, **row} for row in plain.to_dict("records")]


def ablation_unit(
    *,
    coords: Mapping[str, Any],
    model: Mapping[str, Any],
    task: Mapping[str, Any],
    method: str,
    components: Sequence[str],
    metric: str,
    seed: int,
    n_examples: int,
    memory_budget: int,
    device: str = "cpu",
) -> list[Row]:
    """One exact ablation sweep: every selected component ablated alone on the task's test split."""
    m = _model(model, device)
    batch = task_batch(m, task, n=n_examples, seed=seed)
    if len(components) == 1 and components[0] in SELECTIONS:
        chosen = select_components(m.spec, components[0])
    else:
        chosen = parse_components(components, m.spec)
    frame = run_ablation_sweep(
        m,
        batch,
        chosen,
        method=method,  # type: ignore[arg-type]  # validated against ABLATIONS when the sweep was loaded
        metric=METRICS[metric],
        seed=seed,
        memory_budget=memory_budget,
        progress=False,  # units run many at a time; the executor's bar counts them
    )
    return records(frame, coords)


def mask_unit(
    *,
    coords: Mapping[str, Any],
    model: Mapping[str, Any],
    task: Mapping[str, Any],
    method: str,
    granularity: str,
    sparsity: float,
    steps: int,
    ablation: str,
    seed: int,
    n_examples: int,
    device: str = "cpu",
) -> list[Row]:
    """One learned mask (fit on the train split, or the prompts file) and its size and accuracies on test."""
    m = _model(model, device)
    evaluation = task_batch(m, task, n=n_examples, seed=seed)
    fit_batch = evaluation if task.get("prompts") else task_batch(m, task, n=n_examples, seed=seed, split="train")
    mask = fit_mask(
        m,
        fit_batch,
        granularity=granularity,
        method=method,
        sparsity=sparsity,
        steps=steps,
        seed=seed,
        ablation=ablation,  # type: ignore[arg-type]
    )
    replace = ablation if granularity == "component" else "zero"  # weight masks always zero what they drop
    row = {
        "granularity": granularity,
        "size": mask.size,
        "n_units": mask.n_units,
        "density": mask.density,
        "accuracy_full": float(answer_accuracy(m.logits(evaluation.tokens), evaluation)),
        "accuracy_inside": masked_accuracy(m, mask, evaluation, keep="inside", method=replace),  # type: ignore[arg-type]
        "accuracy_outside": masked_accuracy(m, mask, evaluation, keep="outside", method=replace),  # type: ignore[arg-type]
    }
    return [{**coords, **row}]


def weight_drift_unit(
    *, coords: Mapping[str, Any], base: Mapping[str, Any], tuned: Mapping[str, Any], top_k: int, device: str = "cpu"
) -> list[Row]:
    """Weight and spectral drift of every matrix, plus its depth summary (``table`` tells them apart)."""
    a, b = _model(base, device), _model(tuned, device)
    check_pair(a, b)
    weights = run_weight_drift(a, b, top_k=top_k)
    summary = summarize_weight_drift(weights, n_layers=a.spec.n_layers)
    return records(weights, coords, table="weights") + records(summary, coords, table="weights_summary")


def activation_drift_unit(
    *,
    coords: Mapping[str, Any],
    base: Mapping[str, Any],
    tuned: Mapping[str, Any],
    task: Mapping[str, Any],
    measures: Sequence[str],
    batch_size: int,
    seed: int,
    n_examples: int,
    device: str = "cpu",
) -> list[Row]:
    """Activation similarity per layer and hook on the task's test split, plus its depth summary."""
    a, b = _model(base, device), _model(tuned, device)
    check_pair(a, b)
    check_tokenizers(a, b)
    batch = task_batch(a, task, n=n_examples, seed=seed)
    frame = run_activation_drift(a, b, batch, measures=tuple(measures), batch_size=batch_size)
    summary = summarize_activation_drift(frame, n_layers=a.spec.n_layers)
    return records(frame, coords, table="activations") + records(summary, coords, table="activations_summary")
