"""The unit functions of a sweep: one ablation sweep, one mask fit, or one drift measurement, as tidy rows.

Each is a module-level function of plain, picklable arguments (models and tasks as the front door's
``ModelRef`` and ``TaskRef``, seeds as ints),
so any executor can run it, and each is deterministic in those arguments. Every row carries the unit's
coordinates (job, analysis, model, task, replacement or algorithm, seed, ...) so the sweep's records concatenate
into one
tidy frame.
"""

import functools
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from modlens.ablation import run_ablation_sweep
from modlens.drift import (
    check_tokenizers,
    run_activation_drift,
    run_weight_drift,
    summarize_activation_drift,
    summarize_weight_drift,
)
from modlens.masks import fit_mask
from modlens.models import Model, check_pair
from modlens.modularity import masked_accuracy
from modlens.resolve import ModelRef, TaskRef, load_ref, resolve_components, task_batch
from modlens.tasks import METRICS, answer_accuracy

Row = dict[str, Any]


@functools.lru_cache(maxsize=2)
def cached_model(ref: ModelRef, device: str, dtype: str = "float32") -> Model:
    """A loaded model, kept while the next units of the same process use it (drift needs two at once).

    Models are read-only in every unit function, so sharing one between units changes no result.
    """
    return load_ref(ref, device=device, dtype=dtype)


def records(frame: pd.DataFrame, coords: Mapping[str, Any], **extra: Any) -> list[Row]:
    """Rows of ``frame`` as plain dicts (missing values as None) led by the unit's coordinates."""
    plain = frame.astype(object).where(frame.notna(), None)
    return [{**coords, **extra, **row} for row in plain.to_dict("records")]


def ablation_unit(
    *,
    coords: Mapping[str, Any],
    model: ModelRef,
    task: TaskRef,
    replacement: str,
    components: Sequence[str],
    metric: str,
    seed: int,
    n_examples: int,
    memory_budget: int,
    device: str = "cpu",
    dtype: str = "float32",
) -> list[Row]:
    """One exact ablation sweep: every selected component ablated alone on the task's test split."""
    m = cached_model(model, device, dtype)
    batch = task_batch(m, task, n=n_examples, seed=seed)
    chosen = resolve_components(m.spec, components)
    frame = run_ablation_sweep(
        m,
        batch,
        chosen,
        replacement=replacement,  # type: ignore[arg-type]  # validated against names.REPLACEMENTS when loaded
        metric=METRICS[metric],
        seed=seed,
        memory_budget=memory_budget,
        progress=False,  # units run many at a time; the executor's bar counts them
    )
    return records(frame, coords)


def mask_unit(
    *,
    coords: Mapping[str, Any],
    model: ModelRef,
    task: TaskRef,
    algorithm: str,
    granularity: str,
    sparsity: float,
    steps: int,
    replacement: str,
    seed: int,
    n_examples: int,
    device: str = "cpu",
    dtype: str = "float32",
) -> list[Row]:
    """One learned mask (fit on the train split, or the prompts file) and its size and accuracies on test."""
    m = cached_model(model, device, dtype)
    evaluation = task_batch(m, task, n=n_examples, seed=seed)
    fit_batch = evaluation if task.prompts else task_batch(m, task, n=n_examples, seed=seed, split="train")
    mask = fit_mask(
        m,
        fit_batch,
        granularity=granularity,
        algorithm=algorithm,
        sparsity=sparsity,
        steps=steps,
        seed=seed,
        replacement=replacement,  # type: ignore[arg-type]
    )
    replace = replacement if granularity == "component" else "zero"  # weight masks always zero what they drop
    row = {
        "granularity": granularity,
        "size": mask.size,
        "n_units": mask.n_units,
        "density": mask.density,
        "accuracy_full": float(answer_accuracy(m.logits(evaluation.tokens), evaluation)),
        "accuracy_inside": masked_accuracy(m, mask, evaluation, keep="inside", replacement=replace),  # type: ignore[arg-type]
        "accuracy_outside": masked_accuracy(m, mask, evaluation, keep="outside", replacement=replace),  # type: ignore[arg-type]
    }
    return [{**coords, **row}]


def weight_drift_unit(
    *,
    coords: Mapping[str, Any],
    base: ModelRef,
    tuned: ModelRef,
    top_k: int,
    device: str = "cpu",
    dtype: str = "float32",
) -> list[Row]:
    """Weight and spectral drift of every matrix, plus its depth summary (``table`` tells them apart)."""
    a, b = cached_model(base, device, dtype), cached_model(tuned, device, dtype)
    check_pair(a, b)
    weights = run_weight_drift(a, b, top_k=top_k)
    summary = summarize_weight_drift(weights, n_layers=a.spec.n_layers)
    return records(weights, coords, table="weights") + records(summary, coords, table="weights_summary")


def activation_drift_unit(
    *,
    coords: Mapping[str, Any],
    base: ModelRef,
    tuned: ModelRef,
    task: TaskRef,
    measures: Sequence[str],
    batch_size: int,
    seed: int,
    n_examples: int,
    device: str = "cpu",
    dtype: str = "float32",
) -> list[Row]:
    """Activation similarity per layer and hook on the task's test split, plus its depth summary."""
    a, b = cached_model(base, device, dtype), cached_model(tuned, device, dtype)
    check_pair(a, b)
    check_tokenizers(a, b)
    batch = task_batch(a, task, n=n_examples, seed=seed)
    frame = run_activation_drift(a, b, batch, measures=tuple(measures), batch_size=batch_size)
    summary = summarize_activation_drift(frame, n_layers=a.spec.n_layers)
    return records(frame, coords, table="activations") + records(summary, coords, table="activations_summary")
