"""The study's configuration (the family, fine-tuning and mask configs it holds) and its presets."""

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from modlens.config import config_from_mapping
from modlens.errors import ConfigError
from modlens.names import FINETUNE_METHODS
from modlens.tasks.operations import parse_task_name
from modlens.tasks.splits import CompositeSplit, split_composites
from modlens.training.finetune import FinetuneConfig
from modlens.zoo.family import FamilyConfig

# The metrics that get a verdict: behavioural reuse (unseen pairs), mechanistic reuse (the base's parts in the
# tuned model), and where fine-tuning changed the weights, on the fixed-budget arm (same steps for every
# checkpoint: drift grows with steps, and a checkpoint that already meets the target takes none).
PRIMARY_METRICS = ("heldout_composite_accuracy", "reuse_specificity", "weight_drift_upper_share_fixed_budget")


@dataclass(frozen=True, kw_only=True)
class MaskConfig:
    """How the study learns and checks the component masks of its subroutines.

    Attributes:
        seeds: one mask per seed, on the base and on the tuned model.
        steps: optimiser steps per mask.
        sparsity: weight of the size penalty, in (0, 1).
        n_examples: examples per fit and gate batch (and of the mean-ablation reference).
        faithful_min_kept: a mask is scored only if it keeps at least this share of the model's accuracy ...
        faithful_margin: ... and beats same-size random circuits by this margin ...
        faithful_random_draws: ... over this many random draws (at least 5).
    """

    seeds: tuple[int, ...] = (0, 1)
    steps: int = 100
    sparsity: float = 0.5
    n_examples: int = 128
    faithful_min_kept: float = 0.8
    faithful_margin: float = 0.2
    faithful_random_draws: int = 5

    def __post_init__(self) -> None:
        if not self.seeds:
            raise ConfigError("masks.seeds must list at least one seed")
        if self.faithful_random_draws < 5:
            raise ConfigError(f"masks.faithful_random_draws must be at least 5, got {self.faithful_random_draws}")


STUDY_FAMILY = FamilyConfig(
    label_noise=(0.0,),
    steps=1000,
    checkpoints=(0, 300, 1000),
    n_digits=4,
    write_intermediates=True,
    step_fraction=0.6,
)
"""The family the study pretrains by default: 4-digit tasks whose answers write every step's result."""

STUDY_FINETUNE = FinetuneConfig(max_steps=800, fixed_steps=300, replay_fraction=0.3, n_val=256)
"""The study's fine-tuning: stop at the target (at most ``max_steps``) and keep the ``fixed_steps`` snapshot."""


@dataclass(frozen=True, kw_only=True)
class StudyConfig:
    """Everything one run of the study depends on. Seeds are arguments; nothing is hidden global state.

    Pretraining is the ``family`` (``modlens.zoo.FamilyConfig``; its ``pretrain_composites`` are filled in here:
    the first ``n_pretrain_composites`` fine-tuning pairs, when ``family.composite_fraction`` mixes any in).

    Tasks: the composites ``f∘g`` of distinct primitives are shuffled with ``task_seed``; the first
    ``n_heldout_composites`` that differ from every primitive on more than ``1 - max_heldout_agreement`` of
    probe inputs are held out (never fine-tuned on: they test reuse of the parts), then the fine-tuning
    tasks are the next ``n_finetune_composites`` (``None``: all) pairs that are no functional twin of a
    held-out one (``modlens.tasks.splits``).

    ``heldout_composites`` names the held-out pairs instead (a family file's ``heldout``); ``n_heldout_composites``
    is then ignored.

    Fine-tuning (``finetune``, a ``modlens.training.FinetuneConfig``): each checkpoint is fine-tuned once per
    learning rate in ``lr_grid`` until whole-answer validation accuracy on the fine-tuning pairs reaches
    ``finetune.target_accuracy`` (at most ``finetune.max_steps``); the rate is chosen on validation (reached
    target first, then fewer steps, then accuracy), so no checkpoint is judged with a rate tuned for another.
    Beside that stop-at-target arm, the same run is kept after exactly ``finetune.fixed_steps`` steps (every
    checkpoint gets the same budget), so step count cannot pass for modularity. A fine-tune that misses the
    target is counted and left out of the mechanistic metrics. ``finetune.lr`` is not used (``lr_grid`` is).

    Masks (``masks``, a ``MaskConfig``): ``subroutines`` (two primitives) get component masks on the base and
    the tuned model, scored only when faithful.

    Methods (``finetune_methods``, names from ``modlens.names.FINETUNE_METHODS``): every checkpoint is fine-tuned
    once per method under the same rules, a second factor of the study. Proxy-tuning needs a small expert: the
    family member of depth ``proxy_expert_depth`` with the same seed, corpus and label noise, pretrained to the
    same step (pretrained beside the family when the family has no such depth).

    ``expert_mixing``: in each SVF unit, also fine-tune each half of the fine-tuning tasks by SVF and by full
    fine-tuning, mix the halves' scale vectors and average their task vectors, and score the mixes on both halves
    and on the held-out composites (``modlens.study.experts``; four extra fine-tunes per SVF unit).

    Analysis: ``primary_metrics`` (at most three) get a verdict, Holm-corrected; every other metric is
    descriptive. ``n_eval`` test examples score each checkpoint.

    Attributes:
        disentanglement: also fine-tune on each half of the fine-tuning tasks and measure the weight
            disentanglement of the two task vectors (two extra fine-tunes per checkpoint).
    """

    family: FamilyConfig = STUDY_FAMILY
    finetune: FinetuneConfig = STUDY_FINETUNE
    masks: MaskConfig = MaskConfig()
    task_seed: int = 0
    n_heldout_composites: int = 8
    heldout_composites: tuple[str, ...] = ()
    n_finetune_composites: int | None = None
    max_heldout_agreement: float = 0.1
    n_pretrain_composites: int = 5
    lr_grid: tuple[float, ...] = (1e-4, 3e-4, 1e-3)
    subroutines: tuple[str, ...] = ("reverse", "increment")
    n_eval: int = 256
    disentanglement: bool = False
    disentanglement_alphas: tuple[float, ...] = (0.0, 0.5, 1.0)
    primary_metrics: tuple[str, ...] = PRIMARY_METRICS
    finetune_methods: tuple[str, ...] = ("full",)
    proxy_expert_depth: int = 1
    expert_mixing: bool = False

    def __post_init__(self) -> None:
        unknown = [m for m in self.finetune_methods if m not in FINETUNE_METHODS]
        if unknown or not self.finetune_methods or len(set(self.finetune_methods)) != len(self.finetune_methods):
            raise ConfigError(
                f"finetune_methods must list distinct methods of {', '.join(FINETUNE_METHODS)}; "
                f"got {', '.join(self.finetune_methods) or 'none'}"
            )
        if self.expert_mixing and "svf" not in self.finetune_methods:
            raise ConfigError("expert_mixing is measured in the svf units: add svf to finetune_methods")
        if self.proxy_expert_depth < 1:
            raise ConfigError(f"proxy_expert_depth must be at least 1, got {self.proxy_expert_depth}")
        if len(self.subroutines) != 2 or any(parse_task_name(s) != (s,) for s in self.subroutines):
            raise ConfigError(f"subroutines must name two primitives, got {self.subroutines}")
        if not self.lr_grid or min(self.lr_grid) <= 0:
            raise ConfigError("lr_grid must list positive learning rates")
        if self.finetune.lr != FinetuneConfig.lr:
            raise ConfigError("finetune.lr is not used: the study tries every rate of lr_grid; set lr_grid")
        if self.finetune.fixed_steps is None:
            raise ConfigError("finetune.fixed_steps must be set: it is the budget of the fixed-budget arm")
        if 0 not in self.family.checkpoints:
            raise ConfigError("family.checkpoints must include step 0: the random-initialisation control")
        if not 1 <= len(self.primary_metrics) <= 3:
            raise ConfigError(f"declare one to three primary_metrics, got {len(self.primary_metrics)}")
        split = self.task_split()
        if self.n_pretrain_composites > len(split.finetune):
            raise ConfigError(
                f"n_pretrain_composites ({self.n_pretrain_composites}) exceeds the "
                f"{len(split.finetune)} fine-tuning pairs"
            )
        named = tuple(split.finetune[: self.n_pretrain_composites])
        if self.family.pretrain_composites not in ((), named):
            raise ConfigError(
                "family.pretrain_composites are the first n_pretrain_composites fine-tuning pairs; "
                "set n_pretrain_composites instead"
            )
        mixed = named if max(self.family.composite_fraction) > 0 else ()
        object.__setattr__(self, "family", dataclasses.replace(self.family, pretrain_composites=mixed))

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "StudyConfig":
        """The config ``as_dict`` wrote (lists from JSON become tuples); unknown keys raise ``ConfigError``."""
        return config_from_mapping(cls, values)

    def as_dict(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        # absent unless set: stores and fingerprints of earlier studies stay valid
        for key, default in _LATER_KEYS.items():
            if values[key] == default:
                del values[key]
        return values

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(self.as_dict(), sort_keys=True).encode()).hexdigest()[:12]

    def task_split(self) -> CompositeSplit:
        """The fine-tuning, held-out and excluded composites, fixed by ``task_seed``."""
        return split_composites(
            seed=self.task_seed,
            n_heldout=self.n_heldout_composites,
            n_finetune=self.n_finetune_composites,
            n_digits=self.family.n_digits,
            max_agreement=self.max_heldout_agreement,
            heldout=self.heldout_composites,
        )


_LATER_KEYS: dict[str, object] = {
    "heldout_composites": (),
    "finetune_methods": ("full",),
    "proxy_expert_depth": 1,
    "expert_mixing": False,
}
"""Keys added after studies were stored, with the defaults that leave a config's dict (and fingerprint) as it was."""

PRESETS: dict[str, StudyConfig] = {
    # <= 10 minutes on 2 cores: the random-init control and 2 pretrained levels, 3 seeds, one depth. Too few
    # runs for a verdict (the answer says so); it shows the whole pipeline and the direction of each metric.
    "quick": StudyConfig(lr_grid=(1e-3, 1e-4)),
    # Every factor, sized for a verdict: two depths, two corpus-noise levels, two corpus-diversity levels
    # (8 groups) x 3 seeds, the random-init control and two pretrained levels: 24 runs, power 0.96 for a
    # within-group rho of 0.5 (modlens.analysis.power). All five fine-tuning methods: 360 checkpoint units, about
    # 2.7 h on 2 Dask workers of a 2-core machine (313 of 396 units measured, docs/study.md); full alone ~1 h.
    "full": StudyConfig(
        family=dataclasses.replace(STUDY_FAMILY, depths=(2, 4), label_noise=(0.0, 0.2), composite_fraction=(0.0, 0.2)),
        finetune_methods=FINETUNE_METHODS,
    ),
    # Paper scale, for a cluster: "full" with 5 seeds, five pretraining levels over 3000 steps, longer
    # fine-tuning, more mask seeds and steps, and task-vector disentanglement.
    "large": StudyConfig(
        family=dataclasses.replace(
            STUDY_FAMILY,
            depths=(2, 4),
            seeds=(0, 1, 2, 3, 4),
            label_noise=(0.0, 0.2),
            composite_fraction=(0.0, 0.2),
            steps=3000,
            checkpoints=(0, 100, 300, 1000, 3000),
        ),
        finetune=dataclasses.replace(STUDY_FINETUNE, max_steps=1500, fixed_steps=500),
        masks=MaskConfig(seeds=(0, 1, 2), steps=200, n_examples=256),
        disentanglement=True,
        disentanglement_alphas=(0.0, 0.5, 1.0, 1.5),
        finetune_methods=FINETUNE_METHODS,
        expert_mixing=True,
    ),
    # Seconds: for tests of the pipeline, not for conclusions (no fine-tune reaches the target).
    "tiny": StudyConfig(
        family=dataclasses.replace(
            STUDY_FAMILY,
            depths=(1,),
            d_model=32,
            d_mlp=64,
            seeds=(0, 1),
            checkpoints=(0, 20),
            steps=20,
            batch_size=16,
            n_eval=32,
        ),
        lr_grid=(1e-3,),
        finetune=dataclasses.replace(
            STUDY_FINETUNE, max_steps=10, fixed_steps=5, batch_size=16, eval_every=5, n_val=32
        ),
        masks=MaskConfig(seeds=(0,), steps=5, n_examples=32),
        n_eval=32,
    ),
}
