"""Expanding a sweep into units: one per model x task x replacement (or algorithm) x seed; drift: one weight unit per
pair, one activation unit per pair x task x seed."""

import dataclasses
import itertools
from typing import Any

import pandas as pd

from modlens.executors import Unit, run_units
from modlens.resolve import ModelRef, TaskRef
from modlens.sizes import parse_size
from modlens.store import Store
from modlens.sweep.analyses import ablation_unit, activation_drift_unit, mask_unit, weight_drift_unit
from modlens.sweep.spec import AblationJob, DriftJob, Job, SweepSpec

STORE_KIND = "sweep"


def unit_key(**coords: Any) -> str:
    """``job=a|analysis=mask|model=m|...``: readable, and unique for distinct coordinates."""
    return "|".join(f"{k}={v}" for k, v in coords.items() if v is not None)


def expand(spec: SweepSpec) -> list[Unit]:
    """The units of every job of ``spec``, in file order."""
    return [unit for job in spec.jobs for unit in _expand_job(job, spec.device, spec.dtype)]


def _expand_job(job: Job, device: str, dtype: str) -> list[Unit]:
    if isinstance(job, DriftJob):
        return _drift_units(job, device, dtype)
    units = []
    variants = job.replacements if isinstance(job, AblationJob) else job.algorithms
    variant = "replacement" if isinstance(job, AblationJob) else "algorithm"
    for model, task, value, seed in itertools.product(job.models, job.tasks, variants, job.seeds):
        coords = _coords(job, model=model.label, task=task.label, **{variant: value}, seed=seed)
        common = {"coords": coords, "model": model, "task": task, variant: value, "seed": seed}
        common |= {"n_examples": job.n_examples, "device": device, **_dtype(dtype)}
        if isinstance(job, AblationJob):
            kwargs = common | {
                "components": list(job.components),
                "metric": job.metric,
                "memory_budget": parse_size(job.memory_budget),
            }
            units.append(_unit(ablation_unit, coords, kwargs, job))
        else:
            kwargs = common | {
                "granularity": job.granularity,
                "sparsity": job.sparsity,
                "steps": job.steps,
                "replacement": job.replacement,
            }
            units.append(_unit(mask_unit, coords, kwargs, job))
    return units


def _drift_units(job: DriftJob, device: str, dtype: str) -> list[Unit]:
    units = []
    for base, tuned in job.pairs:
        pair = {"base": base, "tuned": tuned, "device": device, **_dtype(dtype)}
        labels = {"model": tuned.label, "base": base.label}
        if job.weights:
            coords = _coords(job, **labels, analysis="weight_drift", task=None, seed=None)
            units.append(_unit(weight_drift_unit, coords, pair | {"coords": coords, "top_k": job.top_k}, job))
        for task, seed in itertools.product(job.tasks, job.seeds):
            coords = _coords(job, **labels, analysis="activation_drift", task=task.label, seed=seed)
            kwargs = pair | {
                "coords": coords,
                "task": task,
                "measures": list(job.measures),
                "batch_size": job.batch_size,
                "seed": seed,
                "n_examples": job.n_examples,
            }
            units.append(_unit(activation_drift_unit, coords, kwargs, job))
    return units


COORDINATES = ("job", "analysis", "model", "base", "task", "replacement", "algorithm", "seed")
"""Columns every sweep row starts with: ``analysis`` is ablation, mask, weight_drift or activation_drift;
``base`` only for drift (``model`` is the tuned model there); ``replacement`` for ablations, ``algorithm`` for
masks."""


def _coords(job: Job, **coords: Any) -> dict[str, Any]:
    values = {"job": job.name, "analysis": job.kind} | coords
    return {name: values.get(name) for name in COORDINATES}


def _dtype(dtype: str) -> dict[str, str]:
    """The dtype a unit loads its models in; left out when the default, so float32 units keep their settings."""
    return {} if dtype == "float32" else {"dtype": dtype}


def _unit(fn: Any, coords: dict[str, Any], kwargs: dict[str, Any], job: Job) -> Unit:
    # the record's copy of the settings is JSON: model and task references as their fields
    settings = {k: dataclasses.asdict(v) if isinstance(v, ModelRef | TaskRef) else v for k, v in kwargs.items()}
    del settings["coords"]
    return Unit(
        key=unit_key(**coords), fn=fn, kwargs=kwargs, meta={"coords": coords, "unit": settings, "job": job.name}
    )


def run_sweep(
    spec: SweepSpec,
    out: str | None = None,
    *,
    executor: Any = None,
    resume: bool = False,
    replace: bool = False,
    progress: bool = True,
) -> pd.DataFrame:
    """Runs a sweep into its store and returns every record's rows as one frame.

    Args:
        spec: a validated sweep (``load_sweep``).
        out: results directory (default: ``spec.out``).
        executor: an ``open_executor`` spec or an open executor (default: ``spec.executor``).
        resume: continue the store already in ``out`` (same sweep), running only the unfinished units.
        replace: delete whatever ``out`` holds and start fresh.
        progress: show a progress bar.

    Raises:
        ConfigError: no output directory.
        StoreError: ``out`` holds something else (see ``Store.open``).
        UnitsFailedError: some units failed; the others are recorded.
    """
    from modlens.errors import ConfigError

    target = out or spec.out
    if target is None:
        raise ConfigError("no output directory: set out in the sweep file or pass --out")
    store = Store.open(target, kind=STORE_KIND, config=spec.config(), allow_replace=replace, resume=resume)
    return run_units(expand(spec), store, executor=executor or spec.executor, progress=progress)
