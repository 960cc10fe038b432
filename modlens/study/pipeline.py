"""Running the study: pretraining units, then one fine-tune-and-measure unit per checkpoint, on any executor.

Every unit's record lands in the store atomically, so a run killed at any moment resumes where it stopped
and ends with the same results as an uninterrupted run (units are deterministic in their arguments).
"""

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from modlens.executors import Unit, open_executor, run_units
from modlens.store import Store
from modlens.study.family_file import CheckedFamily, StudyFamily, check_family
from modlens.study.family_phases import family_checkpoint_unit
from modlens.study.phases import checkpoint_unit, pretrain_unit
from modlens.study.presets import StudyConfig
from modlens.zoo.cache import checkpoint_dirname
from modlens.zoo.family import Member, members

MODELS_DIR = "models"


@dataclass(frozen=True)
class StudyResult:
    """The study's tables: ``metrics`` (what the analysis reads), ``quality``, ``drift_layers`` and
    ``mask_layers`` (mask density per layer, unit group, subroutine, for tuned and base models)."""

    metrics: pd.DataFrame
    quality: pd.DataFrame
    drift_layers: pd.DataFrame
    mask_layers: pd.DataFrame


def plan_pretraining(study: StudyConfig, models_root: Path) -> list[Unit]:
    config = study.as_dict()
    return [
        Unit(
            key=f"pretrain/{m.name}",
            fn=pretrain_unit,
            kwargs={"config": config, "member": vars(m).copy(), "models_root": str(models_root)},
            meta={"phase": "pretrain", "member": m.name},
        )
        for m in pretrained_members(study)
    ]


def pretrained_members(study: StudyConfig) -> list[Member]:
    """The family's members, then the proxy-tuning experts the family lacks (when proxy-tuning is studied)."""
    family = members(study.family)
    experts = [proxy_expert(study, m) for m in family] if "proxy" in study.finetune_methods else []
    return family + sorted(set(experts) - set(family))


def proxy_expert(study: StudyConfig, member: Member) -> Member:
    """The small model proxy-tuning tunes for ``member``: same seed and corpus, ``proxy_expert_depth`` layers."""
    return dataclasses.replace(member, depth=study.proxy_expert_depth)


def method_key(key: str, method: str) -> str:
    """A unit's key for ``method``: all-weights fine-tuning keeps the key it had before methods were a factor."""
    return key if method == "full" else f"{key}/{method}"


def plan_checkpoints(study: StudyConfig, models_root: Path) -> list[Unit]:
    config = study.as_dict()
    return [
        Unit(
            key=method_key(f"finetune/{m.name}/{checkpoint_dirname(step)}", method),
            fn=checkpoint_unit,
            kwargs={
                "config": config,
                "member": vars(m).copy(),
                "step": step,
                "models_root": str(models_root),
                "method": method,
                "expert": vars(proxy_expert(study, m)).copy() if method == "proxy" else None,
            },
            meta={"phase": "finetune", "member": m.name, "step": step, "method": method},
        )
        for m in members(study.family)
        for step in sorted(set(study.family.checkpoints))
        for method in study.finetune_methods
    ]


def plan_family(study: StudyConfig, family: CheckedFamily) -> list[Unit]:
    """One unit per checkpoint of a checked family file and method (quality, fine-tuning and measures; nothing
    pretrained); the first method's unit records the checkpoint's quality. The family's prompt files travel with
    each unit (``finetune`` and ``heldout_prompts`` only when it fine-tunes on prompt files)."""
    config = study.as_dict()
    return [
        Unit(
            key=method_key(f"family/{name}/seed{seed}/{checkpoint_dirname(point.step)}", method),
            fn=family_checkpoint_unit,
            kwargs={
                "config": config,
                "checkpoint": point.as_dict(),
                "name": name,
                "seed": seed,
                "method": method,
                "quality": family.quality,
                "capability": family.capability,
                "record_quality": method == study.finetune_methods[0],
                # only when set: the unit kwargs of families without prompt fine-tuning stay as they were
                **{
                    key: getattr(family, key)
                    for key in ("finetune", "heldout_prompts")
                    if getattr(family, key) is not None
                },
            },
            meta={
                "phase": "finetune",
                "trajectory": name,
                "seed": seed,
                "step": point.step,
                "label": point.label,
                "method": method,
            },
        )
        for (name, seed), points in family.runs.items()
        for point in points
        for method in study.finetune_methods
    ]


def family_store_config(study: StudyConfig, family: CheckedFamily) -> dict[str, object]:
    """What identifies a family-file study's store: the study config and every checked checkpoint."""
    return {**study.as_dict(), "family_file": family.as_dict()}


def run_study(
    study: StudyConfig,
    out_dir: "str | os.PathLike[str]",
    *,
    family: StudyFamily | None = None,
    executor: str = "local",
    resume: bool = False,
    replace: bool = False,
    progress: bool = True,
) -> StudyResult:
    """Runs (or resumes) the study into ``out_dir`` and returns its tables.

    Args:
        study: the configuration.
        out_dir: the study's store; pretrained checkpoints live in ``out_dir/models``.
        family: a family file (``load_family_file``): its checkpoints replace the pretrained family (the file's
            ``[study]`` keys and ``heldout`` are applied on top of ``study``); every checkpoint is checked
            before any unit runs.
        executor: ``"local"``, ``"processes[:N]"`` or ``"dask://HOST:PORT"``.
        resume: continue a store of the same study, skipping finished units.
        replace: discard a store of a different study in ``out_dir``.
        progress: show progress bars.
    """
    if family is not None:
        study = family.study_config(study)
        checked = check_family(family, study)
        with open_executor(executor) as pool:
            config = family_store_config(study, checked)
            store = Store.open(out_dir, kind="study", config=config, allow_replace=replace, resume=resume)
            frame = run_units(plan_family(study, checked), store, executor=pool, progress=progress)
        return split_tables(frame)
    # The executor first: an unreachable cluster then leaves no store behind, and one pool serves both phases.
    with open_executor(executor) as pool:
        store = Store.open(out_dir, kind="study", config=study.as_dict(), allow_replace=replace, resume=resume)
        models_root = Path(out_dir) / MODELS_DIR
        models_root.mkdir(parents=True, exist_ok=True)
        pretraining = plan_pretraining(study, models_root)
        checkpoints = plan_checkpoints(study, models_root)
        # a resumed store whose models/ lost a member (deleted, or the store copied without it) pretrains it
        # again (deterministic: the same checkpoints and quality rows) when a checkpoint unit still to run loads it
        needed = members_to_load(checkpoints, store.done())
        gone = [
            u.key for u in pretraining if u.meta["member"] in needed and not (models_root / u.meta["member"]).is_dir()
        ]
        run_units(pretraining, store, executor=pool, progress=progress, rerun=gone)
        frame = run_units(checkpoints, store, executor=pool, progress=progress)
    return split_tables(frame)


def members_to_load(checkpoints: list[Unit], done: set[str]) -> set[str]:
    """The members (and proxy-tuning experts) whose checkpoints the units not in ``done`` load."""
    todo = [u for u in checkpoints if u.key not in done]
    return {u.meta["member"] for u in todo} | {Member(**u.kwargs["expert"]).name for u in todo if u.kwargs["expert"]}


def split_tables(frame: pd.DataFrame) -> StudyResult:
    """The store's rows, split by their ``table`` tag, each without the columns it does not use."""

    def table(name: str) -> pd.DataFrame:
        if "table" not in frame:  # an empty store has no columns at all
            return pd.DataFrame()
        part = frame[frame["table"] == name]
        return part.drop(columns=["table"]).dropna(axis=1, how="all").reset_index(drop=True)

    return StudyResult(
        metrics=table("metrics"),
        quality=table("quality"),
        drift_layers=table("drift_layers"),
        mask_layers=table("mask_layers"),
    )
