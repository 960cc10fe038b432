"""Sweep files: a TOML grid of ablation, mask and drift jobs, validated whole before any work starts.

Paths in the file (model directories, prompt files, ``out``) are relative to the file's directory.
"""

import dataclasses
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from modlens import names
from modlens.config import config_from_mapping, parse_overrides, read_toml
from modlens.drift import MEASURES
from modlens.errors import ConfigError, ModlensError
from modlens.models.loading import DTYPES
from modlens.resolve import ModelRef, TaskRef, choice_list, component_list, model_ref, task_ref
from modlens.sizes import parse_size
from modlens.tasks import METRICS


@dataclass(frozen=True, kw_only=True)
class AblationJob:
    """Exact ablation sweeps: one unit per model x task x replacement x seed (the seed draws the test batch and
    the resample ablation). ``memory_budget`` is a size such as ``"1GB"`` (a bare number means MB)."""

    kind: Literal["ablation"] = "ablation"
    name: str = ""
    models: tuple[ModelRef, ...] = ()
    tasks: tuple[TaskRef, ...] = ()
    replacements: tuple[str, ...] = ("mean",)
    components: tuple[str, ...] = ("heads",)
    metric: str = "loss"
    seeds: tuple[int, ...] = (0,)
    n_examples: int = 256
    memory_budget: str = "1GB"


@dataclass(frozen=True, kw_only=True)
class MaskJob:
    """Learned masks: one unit per model x task x algorithm x seed (fit on the train split, scored on test)."""

    kind: Literal["mask"] = "mask"
    name: str = ""
    models: tuple[ModelRef, ...] = ()
    tasks: tuple[TaskRef, ...] = ()
    algorithms: tuple[str, ...] = ("continuous_sparsification",)
    granularity: Literal["component", "weight"] = "component"
    sparsity: float = 0.5
    steps: int = 200
    replacement: Literal["zero", "mean"] = "mean"
    seeds: tuple[int, ...] = (0,)
    n_examples: int = 256


@dataclass(frozen=True, kw_only=True)
class DriftJob:
    """Base-to-tuned drift: one weight unit per pair, one activation unit per pair x task x seed."""

    kind: Literal["drift"] = "drift"
    name: str = ""
    pairs: tuple[tuple[ModelRef, ModelRef], ...] = ()
    tasks: tuple[TaskRef, ...] = ()
    measures: tuple[str, ...] = ("linear_cka", "debiased_cka", "cosine")
    weights: bool = True
    top_k: int = 8
    batch_size: int = 8
    seeds: tuple[int, ...] = (0,)
    n_examples: int = 256


Job = AblationJob | MaskJob | DriftJob
JOB_KINDS: dict[str, type[AblationJob] | type[MaskJob] | type[DriftJob]] = {
    "ablation": AblationJob,
    "mask": MaskJob,
    "drift": DriftJob,
}


@dataclass(frozen=True, kw_only=True)
class SweepSpec:
    """A whole sweep file.

    Attributes:
        out: results directory (relative paths are relative to the file), or None to require ``--out``.
        executor: default executor spec (``local``, ``processes:N``, ``dask://HOST:PORT``).
        device: torch device every unit runs on.
        dtype: weight dtype of every model (``float32``, ``bfloat16``, ``float16``).
        jobs: the jobs, with models and tasks resolved.
    """

    out: str | None = None
    executor: str = "local"
    device: str = "cpu"
    dtype: str = "float32"
    jobs: tuple[Job, ...] = ()

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise ConfigError(f"unknown dtype {self.dtype!r}; choose one of {', '.join(DTYPES)}")

    def config(self) -> dict[str, Any]:
        """What identifies the sweep's results (its store fingerprint): device, dtype and jobs, not out/executor.

        The default dtype is left out, so stores written before sweeps had one keep their fingerprint."""
        dtype = {} if self.dtype == "float32" else {"dtype": self.dtype}
        return {"device": self.device, **dtype, "jobs": [dataclasses.asdict(job) for job in self.jobs]}


TOP_KEYS = tuple(f.name for f in dataclasses.fields(SweepSpec))


def load_sweep(path: "str | os.PathLike[str]", overrides: Iterable[str] = ()) -> SweepSpec:
    """Reads and validates a sweep file, then applies ``key=value`` overrides.

    Overrides: ``out=DIR``, ``executor=...``, ``device=...``; ``jobs.N.KEY=VALUE`` sets a key of job N (from 0);
    any other ``KEY=VALUE`` sets that key in every job that has it (``steps=20``, ``seeds=0,1``).

    Raises:
        ConfigError: missing or malformed file, unknown keys (named, with the valid ones), wrong types,
            unknown job kinds, replacements, algorithms, measures, metrics or task names, missing model or prompt paths.
    """
    file = Path(path).expanduser()
    data = read_toml(file, what="sweep file")
    return parse_sweep(data, base_dir=file.resolve().parent, overrides=overrides, where=file.name)


def parse_sweep(
    data: Mapping[str, Any], *, base_dir: Path, overrides: Iterable[str] = (), where: str = "sweep"
) -> SweepSpec:
    """Validates a parsed sweep mapping (see ``load_sweep``)."""
    data = {k: ([dict(j) for j in v] if k == "jobs" and isinstance(v, list) else v) for k, v in data.items()}
    unknown = sorted(set(data) - set(TOP_KEYS))
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}; valid keys: {', '.join(TOP_KEYS)}")
    raw_jobs = data.pop("jobs", None)
    if not isinstance(raw_jobs, list) or not raw_jobs or not all(isinstance(j, dict) for j in raw_jobs):
        raise ConfigError(f"{where}: needs at least one [[jobs]] table")
    _apply_overrides(data, raw_jobs, parse_overrides(overrides), where)
    try:
        _check_scalars(SweepSpec, data)
        top = config_from_mapping(SweepSpec, data)
    except ModlensError as err:
        raise ConfigError(f"{where}: {err}") from None
    jobs = tuple(_job(i, raw, base_dir, where) for i, raw in enumerate(raw_jobs))
    names = [job.name for job in jobs]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ConfigError(f"{where}: job name {repeated[0]!r} is used twice; give each job its own name")
    out = top.out
    if out is not None and not Path(out).expanduser().is_absolute():
        out = str(base_dir / out)
    return dataclasses.replace(top, out=out, jobs=jobs)


def _apply_overrides(top: dict[str, Any], jobs: list[dict[str, Any]], pairs: Mapping[str, str], where: str) -> None:
    for key, value in pairs.items():
        if key in TOP_KEYS and key != "jobs":
            top[key] = value
        elif key.startswith("jobs."):
            index, _, field = key.removeprefix("jobs.").partition(".")
            if not index.isdigit() or int(index) >= len(jobs) or not field:
                raise ConfigError(f"override {key!r}: write jobs.N.KEY with N from 0 to {len(jobs) - 1}")
            jobs[int(index)][field] = value
        else:
            targets = [job for job in jobs if key in _fields(job.get("kind"))]
            if not targets:
                valid = sorted({*TOP_KEYS, *(f for cls in JOB_KINDS.values() for f in _fields(cls))} - {"jobs", "kind"})
                raise ConfigError(f"override {key!r}: no job has this key; valid keys: {', '.join(valid)}")
            for job in targets:
                job[key] = value


def _check_scalars(cls: type, values: Mapping[str, Any]) -> None:
    """Tables and arrays where a single value belongs are named here (``config_from_mapping`` expects scalars)."""
    hints = {f.name: f.type for f in dataclasses.fields(cls)}
    for key, value in values.items():
        hint = hints.get(key)
        if hint in (int, float, str, bool, str | None) and isinstance(value, list | dict):
            raise ConfigError(f"{key} must be a single value, got {value!r}")
        nested = isinstance(value, list) and any(isinstance(item, list | dict) for item in value)
        if hint in (tuple[int, ...], tuple[str, ...]) and nested:
            raise ConfigError(f"{key} must be a list of single values, got {value!r}")


def _fields(kind: Any) -> tuple[str, ...]:
    cls = JOB_KINDS.get(kind) if isinstance(kind, str) else kind
    return tuple(f.name for f in dataclasses.fields(cls)) if cls is not None else ()


def _job(index: int, raw: Mapping[str, Any], base_dir: Path, where: str) -> Job:
    kind = raw.get("kind")
    context = f"{where}: jobs[{index}]"
    if not isinstance(kind, str) or kind not in JOB_KINDS:
        shown = "no kind" if kind is None else f"unknown kind {kind!r}"
        raise ConfigError(f"{context} has {shown}; valid kinds: {', '.join(JOB_KINDS)}")
    context += f" ({kind})"
    values = dict(raw)
    values.setdefault("name", f"{kind}{index}")
    # models, tasks and pairs are resolved to references by _check, not coerced like the other keys
    refs = {key: values.pop(key) for key in _REF_KEYS if key in values and key in _fields(kind)}
    try:
        _check_scalars(JOB_KINDS[kind], values)
        job = config_from_mapping(JOB_KINDS[kind], values)
    except ModlensError as err:
        raise ConfigError(f"{context}: {err}") from None
    try:
        return _check(job, refs, base_dir)
    except ModlensError as err:
        raise ConfigError(f"{context}: {err}") from None


_REF_KEYS = ("models", "tasks", "pairs")


def _list(key: str, value: Any) -> list[Any]:
    """A list of the file (or of an override: comma-separated)."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    if not isinstance(value, list | tuple):
        raise ConfigError(f"{key} must be a list, got {value!r}")
    return list(value)


def _check(job: Job, refs: Mapping[str, Any], base_dir: Path) -> Job:
    """Range and name checks, and the models, tasks and pairs in ``refs`` resolved against the file's directory."""
    if not job.name or "|" in job.name:
        raise ConfigError(f"name must be non-empty and free of '|', got {job.name!r}")
    if not job.seeds:
        raise ConfigError("seeds must list at least one seed")
    if job.n_examples <= 0:
        raise ConfigError(f"n_examples must be positive, got {job.n_examples}")
    tasks = tuple(task_ref(t, base_dir=base_dir) for t in _list("tasks", refs.get("tasks", [])))
    if isinstance(job, DriftJob):
        choice_list("measures", job.measures, MEASURES)
        if job.top_k <= 0 or job.batch_size <= 0:
            raise ConfigError("top_k and batch_size must be positive")
        raw_pairs = _list("pairs", refs.get("pairs", []))
        if not raw_pairs:
            raise ConfigError("pairs must list at least one [base, tuned] pair")
        pairs = tuple(_pair(p, base_dir) for p in raw_pairs)
        if not job.weights and not tasks:
            raise ConfigError("with weights = false, give tasks for activation drift")
        return dataclasses.replace(job, pairs=pairs, tasks=tasks)
    raw_models = _list("models", refs.get("models", []))
    if not raw_models:
        raise ConfigError("models must list at least one model")
    if not tasks:
        raise ConfigError("tasks must list at least one task")
    models = tuple(model_ref(m, base_dir=base_dir) for m in raw_models)
    if isinstance(job, AblationJob):
        choice_list("replacements", job.replacements, names.REPLACEMENTS)
        choice_list("metric", (job.metric,), tuple(METRICS))
        component_list(job.components)
        parse_size(job.memory_budget)
    else:
        choice_list("algorithms", job.algorithms, names.ALGORITHMS)
        choice_list("replacement", (job.replacement,), names.MASK_REPLACEMENTS)
        if not 0 < job.sparsity < 1:
            raise ConfigError(f"sparsity must be in (0, 1), got {job.sparsity}")
        if job.steps <= 0:
            raise ConfigError(f"steps must be positive, got {job.steps}")
    return dataclasses.replace(job, models=models, tasks=tasks)


def _pair(value: Any, base_dir: Path) -> tuple[ModelRef, ModelRef]:
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise ConfigError(f"a pair is [base, tuned], got {value!r}")
    return model_ref(value[0], base_dir=base_dir), model_ref(value[1], base_dir=base_dir)
