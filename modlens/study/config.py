"""The study's configuration and its presets."""

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any, Literal

from modlens.errors import ConfigError
from modlens.tasks.operations import parse_task_name
from modlens.tasks.splits import CompositeSplit, split_composites
from modlens.zoo.config import FamilyConfig

# The metrics that get a verdict: behavioural reuse (unseen pairs), mechanistic reuse (the base's parts in the
# tuned model), and where fine-tuning changed the weights, on the fixed-budget arm (same steps for every
# checkpoint: drift grows with steps, and a checkpoint that already meets the target takes none).
PRIMARY_METRICS = ("heldout_composite_accuracy", "reuse_specificity", "weight_drift_upper_share_fixed_budget")


@dataclass(frozen=True, kw_only=True)
class StudyConfig:
    """Everything one run of the study depends on. Seeds are arguments; nothing is hidden global state.

    Pretraining (the family, see ``modlens.zoo.FamilyConfig``): architecture, depths, d_model, n_heads,
    d_mlp, seeds, label_noise, composite_fraction, pretrain_steps, checkpoints, pretrain_batch_size,
    pretrain_lr, n_digits, write_intermediates, step_fraction.

    Tasks: the composites ``f∘g`` of distinct primitives are shuffled with ``task_seed``; the first
    ``n_heldout_composites`` that differ from every primitive on more than ``1 - max_heldout_agreement`` of
    probe inputs are held out (never fine-tuned on: they test reuse of the parts), then the fine-tuning
    tasks are the next ``n_finetune_composites`` (``None``: all) pairs that are no functional twin of a
    held-out one (``modlens.tasks.splits``). The first ``n_pretrain_composites`` fine-tuning pairs also
    enter the "primitives+composites" corpus.

    Fine-tuning: each checkpoint is fine-tuned once per learning rate in ``lr_grid`` until whole-answer
    validation accuracy on the fine-tuning pairs reaches ``target_accuracy`` (at most
    ``finetune_max_steps``); the rate is chosen on validation (reached target first, then fewer steps, then
    accuracy), so no checkpoint is judged with a rate tuned for another. Beside that stop-at-target arm, the
    same run is kept after exactly ``fixed_budget_steps`` steps (every checkpoint gets the same budget), so
    step count cannot pass for modularity. A fine-tune that misses the target is counted and left out of
    the mechanistic metrics.

    Masks: ``subroutines`` (two primitives) get component masks on the base and the tuned model over
    ``mask_seeds``; a mask is scored only if it keeps at least ``faithful_min_kept`` of the model's accuracy
    on its task and beats ``faithful_random_draws`` same-size random circuits by ``faithful_margin``.

    Analysis: ``primary_metrics`` (at most three) get a verdict, Holm-corrected; every other metric is
    descriptive.

    Attributes:
        disentanglement: also fine-tune on each half of the fine-tuning tasks and measure the weight
            disentanglement of the two task vectors (two extra fine-tunes per checkpoint).
    """

    architecture: Literal["gpt_neox", "llama"] = "gpt_neox"
    depths: tuple[int, ...] = (3,)
    d_model: int = 64
    n_heads: int = 4
    d_mlp: int = 256
    seeds: tuple[int, ...] = (0, 1, 2)
    label_noise: tuple[float, ...] = (0.0,)
    composite_fraction: tuple[float, ...] = (0.0,)
    pretrain_steps: int = 1000
    checkpoints: tuple[int, ...] = (0, 300, 1000)
    pretrain_batch_size: int = 64
    pretrain_lr: float = 3e-3
    n_digits: int = 4
    write_intermediates: bool = True
    step_fraction: float = 0.6
    task_seed: int = 0
    n_heldout_composites: int = 8
    n_finetune_composites: int | None = None
    max_heldout_agreement: float = 0.1
    n_pretrain_composites: int = 5
    lr_grid: tuple[float, ...] = (1e-4, 3e-4, 1e-3)
    finetune_max_steps: int = 800
    fixed_budget_steps: int = 300
    finetune_batch_size: int = 64
    target_accuracy: float = 0.9
    eval_every: int = 50
    replay_fraction: float = 0.3
    subroutines: tuple[str, ...] = ("reverse", "increment")
    mask_seeds: tuple[int, ...] = (0, 1)
    mask_steps: int = 100
    mask_sparsity: float = 0.5
    n_mask_examples: int = 128
    faithful_min_kept: float = 0.8
    faithful_margin: float = 0.2
    faithful_random_draws: int = 5
    n_eval: int = 256
    disentanglement: bool = False
    disentanglement_alphas: tuple[float, ...] = (0.0, 0.5, 1.0)
    primary_metrics: tuple[str, ...] = PRIMARY_METRICS

    def __post_init__(self) -> None:
        if len(self.subroutines) != 2 or any(parse_task_name(s) != (s,) for s in self.subroutines):
            raise ConfigError(f"subroutines must name two primitives, got {self.subroutines}")
        if not self.lr_grid or min(self.lr_grid) <= 0:
            raise ConfigError("lr_grid must list positive learning rates")
        if not self.mask_seeds:
            raise ConfigError("mask_seeds must list at least one seed")
        if 0 not in self.checkpoints:
            raise ConfigError("checkpoints must include step 0: the random-initialisation control")
        if not 0.0 < self.target_accuracy <= 1.0:
            raise ConfigError(f"target_accuracy must be in (0, 1], got {self.target_accuracy}")
        if self.fixed_budget_steps < 1 or self.finetune_max_steps < 1:
            raise ConfigError("finetune_max_steps and fixed_budget_steps must be positive")
        if self.faithful_random_draws < 5:
            raise ConfigError(f"faithful_random_draws must be at least 5, got {self.faithful_random_draws}")
        if not 1 <= len(self.primary_metrics) <= 3:
            raise ConfigError(f"declare one to three primary_metrics, got {len(self.primary_metrics)}")
        split = self.task_split()
        if self.n_pretrain_composites > len(split.finetune):
            raise ConfigError(
                f"n_pretrain_composites ({self.n_pretrain_composites}) exceeds the "
                f"{len(split.finetune)} fine-tuning pairs"
            )
        self.family()  # validates the pretraining fields

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(self.as_dict(), sort_keys=True).encode()).hexdigest()[:12]

    def task_split(self) -> CompositeSplit:
        """The fine-tuning, held-out and excluded composites, fixed by ``task_seed``."""
        return split_composites(
            seed=self.task_seed,
            n_heldout=self.n_heldout_composites,
            n_finetune=self.n_finetune_composites,
            n_digits=self.n_digits,
            max_agreement=self.max_heldout_agreement,
        )

    def family(self) -> FamilyConfig:
        """The pretraining family this study fine-tunes."""
        extra = self.task_split().finetune[: self.n_pretrain_composites] if max(self.composite_fraction) > 0 else ()
        return FamilyConfig(
            architecture=self.architecture,
            depths=self.depths,
            d_model=self.d_model,
            n_heads=self.n_heads,
            d_mlp=self.d_mlp,
            seeds=self.seeds,
            label_noise=self.label_noise,
            composite_fraction=self.composite_fraction,
            pretrain_composites=tuple(extra),
            steps=self.pretrain_steps,
            checkpoints=self.checkpoints,
            batch_size=self.pretrain_batch_size,
            lr=self.pretrain_lr,
            n_digits=self.n_digits,
            write_intermediates=self.write_intermediates,
            step_fraction=self.step_fraction,
            n_eval=self.n_eval,
        )


PRESETS: dict[str, StudyConfig] = {
    # <= 10 minutes on 2 cores: the random-init control and 2 pretrained levels, 3 seeds, one depth. Too few
    # runs for a verdict (the answer says so); it shows the whole pipeline and the direction of each metric.
    "quick": StudyConfig(lr_grid=(1e-3, 1e-4)),
    # Every factor, sized for a verdict: two depths, two corpus-noise levels, two corpus-diversity levels
    # (8 groups) x 3 seeds, the random-init control and two pretrained levels: 24 runs, power 0.96 for a
    # within-group rho of 0.5 (modlens.analysis.power). About an hour on one 2-core machine (README).
    "full": StudyConfig(
        depths=(2, 4),
        label_noise=(0.0, 0.2),
        composite_fraction=(0.0, 0.2),
    ),
    # Paper scale, for a cluster: "full" with 5 seeds, five pretraining levels over 3000 steps, longer
    # fine-tuning, more mask seeds and steps, and task-vector disentanglement.
    "large": StudyConfig(
        depths=(2, 4),
        seeds=(0, 1, 2, 3, 4),
        label_noise=(0.0, 0.2),
        composite_fraction=(0.0, 0.2),
        pretrain_steps=3000,
        checkpoints=(0, 100, 300, 1000, 3000),
        finetune_max_steps=1500,
        fixed_budget_steps=500,
        mask_seeds=(0, 1, 2),
        mask_steps=200,
        n_mask_examples=256,
        disentanglement=True,
        disentanglement_alphas=(0.0, 0.5, 1.0, 1.5),
    ),
    # Seconds: for tests of the pipeline, not for conclusions (no fine-tune reaches the target).
    "tiny": StudyConfig(
        depths=(1,),
        d_model=32,
        d_mlp=64,
        seeds=(0, 1),
        checkpoints=(0, 20),
        pretrain_steps=20,
        pretrain_batch_size=16,
        lr_grid=(1e-3,),
        finetune_max_steps=10,
        fixed_budget_steps=5,
        finetune_batch_size=16,
        eval_every=5,
        mask_seeds=(0,),
        mask_steps=5,
        n_mask_examples=32,
        n_eval=32,
    ),
}
