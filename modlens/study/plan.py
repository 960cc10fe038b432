"""A family-file study's costs, stated before it runs: its units, the time and memory of each, and an executor.

Time comes from a short timed probe on this machine: the first checkpoint is loaded and fine-tuned for a few
steps as the study fine-tunes it; a unit's time is that rate times the optimiser steps a unit takes at most (every
rate of ``lr_grid`` to ``finetune.max_steps``, the fixed-budget rerun, the masks scaled by their batch size, the
disentanglement fine-tunes) plus the load. Memory is the parameters held at once (base, tuned and fixed-budget
copies, gradients, two Adam moments) plus an activation estimate of one training batch.
"""

import dataclasses
import math
import os
import time
from dataclasses import dataclass

from modlens.models.spec import ModelSpec
from modlens.study.family_file import CheckedFamily, ResolvedCheckpoint
from modlens.study.family_phases import load_checkpoint
from modlens.study.finetuning import finetune_config
from modlens.study.pipeline import plan_family
from modlens.study.presets import StudyConfig
from modlens.study.tasks import StudyTasks

PROBE_STEPS = 5
PARAMETER_COPIES = 6  # base, tuned, fixed-budget snapshot, gradients, Adam's two moments
BYTES_PER_FLOAT = 4
ACTIVATION_FLOATS_PER_LAYER = 16  # residual, attention and MLP activations kept for the backward pass, per d_model


@dataclass(frozen=True)
class UnitCost:
    """One unit's key, checkpoint and estimates (seconds at most; bytes at peak)."""

    key: str
    checkpoint: str
    seconds: float
    memory_bytes: int


@dataclass(frozen=True)
class StudyPlan:
    """What ``modlens study --family FILE --plan`` prints."""

    units: tuple[UnitCost, ...]
    probe: str
    executor: str
    reason: str

    @property
    def total_seconds(self) -> float:
        return sum(u.seconds for u in self.units)

    def text(self) -> str:
        width = max(len(u.key) for u in self.units)
        lines = [
            f"{len(self.units)} units; {self.probe}",
            f"{'unit':<{width}}  {'est. time':>10}  {'memory':>9}  checkpoint",
        ]
        lines += [
            f"{u.key:<{width}}  {_seconds(u.seconds):>10}  {_size(u.memory_bytes):>9}  {u.checkpoint}"
            for u in self.units
        ]
        lines.append(f"total at most {_seconds(self.total_seconds)} of compute")
        lines.append(f"recommended executor: {self.executor} ({self.reason})")
        return "\n".join(lines)


def plan_study(study: StudyConfig, family: CheckedFamily, *, probe_steps: int = PROBE_STEPS) -> StudyPlan:
    """Times a probe fine-tune of the family's first checkpoint and states every unit's cost; trains nothing else."""
    first = next(iter(family.runs.values()))
    point = next((c for c in first if not c.control), first[0])
    per_step, load_seconds = probe(study, point, probe_steps)
    seconds = load_seconds + per_step * optimiser_steps(study)
    memory = unit_memory(study, family.spec)
    units = tuple(UnitCost(u.key, u.meta["label"], seconds, memory) for u in plan_family(study, family))
    text = (
        f"probe: {probe_steps} fine-tuning steps of {point.label} took {per_step * probe_steps:.2f} s "
        f"({per_step:.3f} s/step, load {load_seconds:.2f} s) on this machine's CPU"
    )
    executor, reason = recommend_executor(len(units), seconds, memory)
    return StudyPlan(units, text, executor, reason)


def probe(study: StudyConfig, point: ResolvedCheckpoint, steps: int) -> tuple[float, float]:
    """Seconds per fine-tuning step of ``point`` (as the study fine-tunes) and seconds to load it."""
    from modlens.training.finetune import finetune

    started = time.perf_counter()
    base = load_checkpoint(point, seed=0)
    loaded = time.perf_counter() - started
    tasks = StudyTasks.for_model(study, base)
    replay, weights = tasks.replay
    config = dataclasses.replace(finetune_config(study, max(study.lr_grid), steps), eval_every=steps, fixed_steps=None)
    started = time.perf_counter()
    finetune(base, tasks.finetune, config, replay=replay, replay_weights=weights, progress=False)
    return (time.perf_counter() - started) / steps, loaded


def optimiser_steps(study: StudyConfig) -> float:
    """The most optimiser steps one unit takes, in fine-tuning-batch equivalents."""
    tuning = study.finetune
    steps = float(len(study.lr_grid) * tuning.max_steps + (tuning.fixed_steps or 0))
    n_masks = len(study.masks.seeds) * (2 * len(study.subroutines) + 2)  # parts on base and tuned, two step masks
    steps += n_masks * study.masks.steps * study.masks.n_examples / tuning.batch_size
    if study.disentanglement:
        steps += 2 * tuning.max_steps
    return steps


def unit_memory(study: StudyConfig, spec: ModelSpec) -> int:
    """Peak bytes of one unit: parameter copies plus one training batch's activations."""
    attention = spec.n_heads * spec.d_head * spec.d_model * 4  # query, key, value, output (n_kv_heads ignored)
    per_layer = attention + 2 * spec.d_model * spec.d_mlp
    n_params = spec.n_layers * per_layer + 2 * spec.d_vocab * spec.d_model
    seq = study.family.layout.seq_len
    batch = max(study.finetune.batch_size, study.masks.n_examples, study.n_eval)
    activations = batch * seq * spec.n_layers * (ACTIVATION_FLOATS_PER_LAYER * spec.d_model + spec.n_heads * seq)
    return int((PARAMETER_COPIES * n_params + activations) * BYTES_PER_FLOAT)


def recommend_executor(n_units: int, unit_seconds: float, unit_bytes: int) -> tuple[str, str]:
    """``local``, ``processes:N`` (N fits the cores and the free memory) or a Dask cluster for large families."""
    cores = os.cpu_count() or 1
    free = _free_memory()
    fits = max(1, free // max(unit_bytes, 1)) if free else cores
    workers = int(min(cores, n_units, fits))
    hours = n_units * unit_seconds / max(workers, 1) / 3600
    if hours > 2 and n_units > workers:
        return (
            "dask://HOST:PORT",
            f"about {hours:.1f} h on {workers} local workers; one checkpoint per Dask worker spreads "
            f"{n_units} units over a cluster",
        )
    if workers <= 1:
        why = "one core" if cores == 1 else ("one unit" if n_units == 1 else "free memory holds one unit")
        return "local", why
    free_text = f"{_size(free)} free" if free else "free memory unknown"
    return (
        f"processes:{workers}",
        f"{cores} cores, {n_units} units, {workers} x {_size(unit_bytes)} in {free_text}",
    )


def _free_memory() -> int:
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 0


def _seconds(value: float) -> str:
    if value < 90:
        return f"{math.ceil(value)} s"
    if value < 5400:
        return f"{value / 60:.0f} min"
    return f"{value / 3600:.1f} h"


def _size(n_bytes: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if n_bytes >= scale:
            return f"{n_bytes / scale:.1f} {unit}"
    return f"{n_bytes} B"
