"""The fine-tuning method as a factor of the study: one unit per checkpoint and method, proxy-tuning's experts
pretrained beside the family, undefined metrics NaN with their reason, the probes before and after."""

import dataclasses
from pathlib import Path

import pandas as pd
import pytest

from modlens.errors import ConfigError
from modlens.names import FINETUNE_METHODS
from modlens.study import PRESETS, StudyConfig, plan_checkpoints, run_study
from modlens.study.experts import EXPERT_MIXING
from modlens.study.phases import MISSED_TARGET, mechanism_names
from modlens.study.pipeline import pretrained_members
from modlens.study.reasoning import PROBE_METRICS
from modlens.training.methods import NO_WEIGHTS

TINY = PRESETS["tiny"]


def tiny_with(**changes) -> StudyConfig:
    """The tiny preset with one pretraining seed (half the units) and ``changes``."""
    family = dataclasses.replace(TINY.family, seeds=(0,), pretrain_composites=())
    return dataclasses.replace(TINY, **{"family": family, **changes})


def test_methods_are_validated_and_default_to_full_only() -> None:
    assert TINY.finetune_methods == ("full",)
    assert "finetune_methods" not in TINY.as_dict()  # fingerprints of single-method stores stay as they were
    assert PRESETS["full"].finetune_methods == FINETUNE_METHODS
    for bad in ((), ("full", "full"), ("qlora",)):
        with pytest.raises(ConfigError, match="finetune_methods"):
            tiny_with(finetune_methods=bad)
    with pytest.raises(ConfigError, match="add svf to finetune_methods"):
        tiny_with(expert_mixing=True)


def test_proxy_experts_are_pretrained_beside_the_family_only_when_needed() -> None:
    study = tiny_with(family=dataclasses.replace(TINY.family, depths=(2,), seeds=(0, 1), pretrain_composites=()))
    assert [m.depth for m in pretrained_members(study)] == [2, 2]
    with_proxy = dataclasses.replace(study, finetune_methods=("full", "proxy"), proxy_expert_depth=1)
    members = pretrained_members(with_proxy)
    assert [(m.depth, m.seed) for m in members] == [(2, 0), (2, 1), (1, 0), (1, 1)]
    units = plan_checkpoints(with_proxy, models_root=Path("/nowhere"))
    proxy = [u for u in units if u.meta["method"] == "proxy"]
    assert {u.kwargs["expert"]["depth"] for u in proxy} == {1}
    assert all(u.key.endswith("/proxy") for u in proxy)
    assert all("/" not in u.key.split("step")[-1] for u in units if u.meta["method"] == "full")


def test_every_method_runs_through_the_study(tmp_path) -> None:
    # two layers (upper-only tuning then has a lower half to leave alone); proxy-tuning's expert has one
    study = tiny_with(
        family=dataclasses.replace(TINY.family, depths=(2,), seeds=(0,), pretrain_composites=()),
        finetune_methods=FINETUNE_METHODS,
        expert_mixing=True,
    )
    result = run_study(study, tmp_path / "study", progress=False)
    metrics = result.metrics
    assert set(metrics["method"]) == set(FINETUNE_METHODS)
    assert set(metrics["depth"]) == {2} and set(result.quality["depth"]) == {2}  # the expert is no level
    per_method = metrics.groupby("method")["metric"].apply(lambda names: frozenset(names) - set(EXPERT_MIXING))
    assert len(set(per_method)) == 1, "every method reports the same metrics (and SVF its experts' mixing)"
    mechanisms = {name for name, _ in mechanism_names(study)}
    mech = metrics[metrics["metric"].isin(mechanisms)]
    assert mech["value"].isna().all()
    reasons = mech.groupby("method")["reason"].agg(set)
    assert reasons["proxy"] == {NO_WEIGHTS}
    # the tiny preset's 10 fine-tuning steps reach no target: the weight methods' mechanisms are missing for that
    assert all(reasons[m] == {MISSED_TARGET} for m in FINETUNE_METHODS if m != "proxy")
    drift = metrics[metrics["metric"] == "weight_drift_upper_share_fixed_budget"].set_index("method")
    assert drift["value"].drop("proxy").notna().all() and drift.loc["proxy", "value"].isna().all()
    # upper-layer-only fine-tuning moves no weight below its split: its upper share is 1 on the fixed-budget arm
    upper = metrics[(metrics["metric"] == "weight_drift_upper_share_fixed_budget") & (metrics["method"] == "upper")]
    assert (upper["value"] == 1.0).all()
    # the reasoning probes, before (the base, the same for every method) and after fine-tuning
    probes = metrics[metrics["metric"].isin([*PROBE_METRICS, *(f"{m}_base" for m in PROBE_METRICS)])]
    assert set(probes["metric"]) == {*PROBE_METRICS, *(f"{m}_base" for m in PROBE_METRICS)}
    rates = probes["value"].dropna()
    assert len(rates) and rates.between(0, 1).all()
    base = probes[probes["metric"].str.endswith("_base")].pivot_table(
        index=["step", "metric"], columns="method", values="value"
    )
    assert (base.max(axis=1) - base.min(axis=1)).fillna(0).max() == 0
    # the SVF units mix the two halves' experts: interference is a difference of accuracies, in every SVF unit
    mixing = metrics[metrics["metric"].isin(EXPERT_MIXING)]
    assert set(mixing["method"]) == {"svf"} and set(mixing["metric"]) == set(EXPERT_MIXING)
    assert len(mixing) == 2 * len(EXPERT_MIXING) and mixing["value"].between(-1, 1).all()
    # drift layers carry the method, for the figures that overlay methods
    assert set(result.drift_layers.get("method", pd.Series(dtype=str))) <= set(FINETUNE_METHODS)
