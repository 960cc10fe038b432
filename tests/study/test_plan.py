"""The plan's arithmetic: optimiser steps a unit takes at most, memory per unit, and the executor it recommends."""

import dataclasses

from modlens.models.spec import ModelSpec
from modlens.study import PRESETS
from modlens.study import plan as plan_module
from modlens.study.plan import optimiser_steps, recommend_executor, unit_memory

TINY = PRESETS["tiny"]
SPEC = ModelSpec(
    architecture="GPTNeoXForCausalLM",
    n_layers=2,
    n_heads=4,
    n_kv_heads=4,
    d_model=32,
    d_head=8,
    d_mlp=64,
    d_vocab=40,
    n_ctx=32,
)


def test_optimiser_steps_count_every_rate_the_budget_rerun_and_the_masks() -> None:
    # tiny: 1 rate x 10 steps + 5 fixed-budget steps + 1 mask seed x (2 x 2 parts + 2 step masks) x 5 steps x 32/16
    assert optimiser_steps(TINY) == 10 + 5 + 6 * 5 * 2
    assert optimiser_steps(dataclasses.replace(TINY, disentanglement=True)) == 10 + 5 + 60 + 20


def test_unit_memory_grows_with_the_model_and_the_batch() -> None:
    small = unit_memory(TINY, SPEC)
    assert small > 6 * 4 * SPEC.n_layers * 2 * SPEC.d_model * SPEC.d_mlp  # at least the MLP weights' copies
    assert unit_memory(TINY, dataclasses.replace(SPEC, n_layers=4)) > small
    wider = dataclasses.replace(TINY, finetune=dataclasses.replace(TINY.finetune, batch_size=4096))
    assert unit_memory(wider, SPEC) > small


def test_the_executor_fits_cores_and_memory_and_sends_long_families_to_dask(monkeypatch) -> None:
    monkeypatch.setattr(plan_module.os, "cpu_count", lambda: 4)
    monkeypatch.setattr(plan_module, "_free_memory", lambda: 10 * 10**9)
    assert recommend_executor(8, 60.0, 10**8)[0] == "processes:4"
    assert recommend_executor(8, 60.0, 4 * 10**9)[0] == "processes:2"  # two units fit in the free memory
    assert recommend_executor(1, 60.0, 10**8)[0] == "local"
    executor, reason = recommend_executor(100, 3600.0, 10**8)
    assert executor == "dask://HOST:PORT" and "one checkpoint per Dask worker" in reason
