"""Building the embedded family: pretrain every member, save its checkpoints and their measured quality.

Each member is trained into a hidden staging directory and renamed into place only when complete, so an
interrupted build leaves no half-written entry and a rerun completes exactly the missing members. A file lock per
member lets several processes (notebooks, study workers) share one cache: one builds a member, the others wait
for it and reuse it, and nobody removes a staging directory another process is still writing.
"""

import dataclasses
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from filelock import FileLock

from modlens.atomic import atomic_directory, remove_staging, write_json_atomic
from modlens.errors import ConfigError, ModlensError
from modlens.models.factory import tiny_model
from modlens.models.loading import load_model
from modlens.models.model import Model
from modlens.models.saving import save_model
from modlens.progress import progress_bar
from modlens.provenance import provenance
from modlens.tasks.batch import Batch
from modlens.tasks.metrics import evaluate
from modlens.tasks.operations import PRIMITIVES
from modlens.tasks.rendering import Rendering
from modlens.tasks.synthetic import SyntheticTask, step_forms
from modlens.training.pretrain import PretrainConfig, pretrain
from modlens.zoo.cache import cache_root, checkpoint_dirname
from modlens.zoo.family import FamilyConfig, Member, members

log = logging.getLogger(__name__)

QUALITY_FILE = "quality.csv"
FAMILY_FILE = "family.json"


@dataclass(frozen=True)
class Family:
    """A built family on disk."""

    config: FamilyConfig
    root: Path

    @property
    def members(self) -> list[Member]:
        return members(self.config)

    def path(self, member: Member, step: int) -> Path:
        return self.root / member.name / checkpoint_dirname(step)

    def load(self, member: Member, step: int, *, device: str | None = None) -> Model:
        """One checkpoint as a ``Model``."""
        path = self.path(member, step)
        if not path.is_dir():
            raise ModlensError(
                f"family has no checkpoint {member.name} step {step}; steps: {list(self.config.checkpoints)}"
            )
        return load_model(path, device=device)

    def quality(self) -> pd.DataFrame:
        """Measured pretraining quality: one row per member, checkpoint and primitive (held-out split)."""
        return pd.concat([pd.read_csv(self.root / m.name / QUALITY_FILE) for m in self.members], ignore_index=True)


def family_root(config: FamilyConfig, cache_dir: "str | os.PathLike[str] | None" = None) -> Path:
    return cache_root(cache_dir) / f"family-{config.key()}"


def build_family(
    config: FamilyConfig | None = None,
    *,
    cache_dir: "str | os.PathLike[str] | None" = None,
    progress: bool = True,
) -> Family:
    """Builds (or completes) the family in the cache and returns it; finished members are reused.

    Args:
        config: the family to build (default: ``FamilyConfig()``).
        cache_dir: cache directory (default: see ``modlens.zoo.cache.cache_root``).
        progress: show progress bars.
    """
    config = config or FamilyConfig()
    check_buildable(config)
    root = family_root(config, cache_dir)
    root.mkdir(parents=True, exist_ok=True)
    write_json_atomic(root / FAMILY_FILE, {"config": config.as_dict(), "key": config.key()}, indent=2)
    todo = [m for m in members(config) if not (root / m.name).is_dir()]
    if todo:
        log.info("building %d of %d family members in %s", len(todo), len(members(config)), root)
    for member in progress_bar(todo, enabled=progress, desc="family"):
        build_member(config, member, root, progress=progress)
    return Family(config, root)


def build_member(config: FamilyConfig, member: Member, root: Path, *, progress: bool = True) -> Path:
    """Pretrains one member into ``root/<member.name>`` (atomically) unless it is already there.

    Holds the member's lock (``root/.<member>.lock``) while it builds: a second process asking for the same member
    waits, then finds it built. Staging leftovers of a killed build are removed under the lock.
    """
    final = root / member.name
    if final.is_dir():
        return final
    check_buildable(config)
    root.mkdir(parents=True, exist_ok=True)
    with FileLock(root / f".{member.name}.lock"):
        if final.is_dir():  # built by another process while this one waited
            return final
        remove_staging(root, member.name)
        _build_member(config, member, final, progress=progress)
    return final


def check_buildable(config: FamilyConfig) -> None:
    """Raises ``ConfigError`` for a family whose corpus cannot be drawn (composites asked for, none named)."""
    if max(config.composite_fraction) > 0 and not config.pretrain_composites:
        raise ConfigError("composite_fraction > 0 needs pretrain_composites (composite task names)")


def quality_batches(config: FamilyConfig, *, rendering: Rendering | None = None) -> dict[str, Batch]:
    """The held-out batches pretraining quality is measured on: ``n_eval`` test examples of every primitive,
    written for a tokenizer by ``rendering`` (default: in the synthetic task vocabulary)."""
    layout = dataclasses.replace(config.layout, rendering=rendering)
    primitives = [SyntheticTask((p,), layout) for p in PRIMITIVES]
    return {t.name: t.sample(config.n_eval, split="test", seed=10_000 + i) for i, t in enumerate(primitives)}


def _build_member(config: FamilyConfig, member: Member, final: Path, *, progress: bool) -> None:
    layout = config.layout
    primitives = [SyntheticTask((p,), layout) for p in PRIMITIVES]
    held_out = quality_batches(config)
    init = tiny_model(
        config.architecture,
        tokenizer=layout.vocab.tokenizer(),
        n_layers=member.depth,
        d_model=config.d_model,
        n_heads=config.n_heads,
        d_mlp=config.d_mlp,
        n_ctx=max(32, layout.seq_len),
        seed=member.seed,
    )
    composites = [SyntheticTask.from_name(name, layout) for name in config.pretrain_composites]
    steps = step_forms(layout) if config.step_fraction else []
    pretrain_config = PretrainConfig(
        steps=config.steps,
        checkpoints=tuple(sorted(set(config.checkpoints))),
        batch_size=config.batch_size,
        label_noise=member.label_noise,
        composite_fraction=member.composite_fraction,
        step_fraction=config.step_fraction,
        lr=config.lr,
        seed=member.seed,
    )
    rows: list[dict] = []
    started = time.perf_counter()

    def save_checkpoint(staging: Path, step: int, model: Model) -> None:
        with torch.no_grad():
            for task, batch in held_out.items():
                rows.append(
                    {
                        "depth": member.depth,
                        "seed": member.seed,
                        "label_noise": member.label_noise,
                        "corpus": member.corpus,
                        "step": step,
                        "task": task,
                        **evaluate(model.logits(batch.tokens), batch),
                    }
                )
        save_model(
            model,
            staging / checkpoint_dirname(step),
            layout=layout.as_record(),
            family=config.key(),
            member=member.name,
            step=step,
            seed=member.seed,
            label_noise=member.label_noise,
            corpus=member.corpus,
            pretrain=dataclasses.asdict(pretrain_config),
        )

    with atomic_directory(final) as staging:
        pretrain(
            init,
            primitives,
            pretrain_config,
            composites=composites if member.composite_fraction else (),
            steps=steps,
            on_checkpoint=lambda step, model: save_checkpoint(staging, step, model),
            progress=progress,
        )
        pd.DataFrame(rows).to_csv(staging / QUALITY_FILE, index=False)
        meta = provenance(member=member.name, seconds=round(time.perf_counter() - started, 1))
        (staging / "provenance.json").write_text(json.dumps(meta, indent=2))


def quality_table(family: Family) -> pd.DataFrame:
    """Pretraining quality per checkpoint: held-out loss and accuracies averaged over primitives and seeds,
    with the spread over seeds."""
    q = family.quality()
    per_run = q.groupby(["depth", "corpus", "label_noise", "seed", "step"], as_index=False)[
        ["loss", "token_accuracy", "answer_accuracy"]
    ].mean()
    table = per_run.groupby(["depth", "corpus", "label_noise", "step"]).agg(
        seeds=("seed", "nunique"),
        heldout_loss=("loss", "mean"),
        heldout_loss_sd=("loss", "std"),
        token_accuracy=("token_accuracy", "mean"),
        answer_accuracy=("answer_accuracy", "mean"),
        answer_accuracy_sd=("answer_accuracy", "std"),
    )
    return table.reset_index()
