"""The embedded model family: which models, corpora and checkpoints it holds."""

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any, Literal

from modlens.errors import ConfigError
from modlens.tasks.operations import parse_task_name
from modlens.tasks.synthetic import TaskLayout


@dataclass(frozen=True, kw_only=True)
class FamilyConfig:
    """A family of small models pretrained here to graded quality.

    Pretraining quality varies along three axes: training step (checkpoints along one trajectory,
    step 0 = random initialisation, the control), corpus label noise, and seed. Depth is a factor too.

    Attributes:
        architecture: ``"gpt_neox"`` (Pythia architecture) or ``"llama"``.
        depths: numbers of layers, one model per depth.
        d_model: residual width.
        n_heads: attention heads.
        d_mlp: MLP width.
        seeds: pretraining seeds (initialisation and data).
        label_noise: corpus label-noise rates (corpus quality).
        composite_fraction: corpus diversity: shares of each pretraining batch drawn from
            ``pretrain_composites`` (0 = primitives only).
        pretrain_composites: composite tasks mixed into the corpus when ``composite_fraction`` > 0 (needed then:
            ``build_family`` refuses a family without them; the study fills them in from its task split).
        steps: pretraining steps.
        checkpoints: steps kept along the trajectory.
        batch_size: pretraining batch size.
        lr: peak pretraining learning rate.
        n_digits: input length of the synthetic tasks.
        base: digit base.
        n_slots: operation slots in the shared sequence layout.
        write_intermediates: the model writes every step's result (``x = g(x) ; f(g(x))``), not only the last.
        step_fraction: share of each pretraining batch drawn from step forms: each primitive as one step of
            every two-step program, never the composition (``modlens.tasks.synthetic.step_forms``; needs
            ``write_intermediates``).
        n_eval: held-out examples per primitive for the quality table.
    """

    architecture: Literal["gpt_neox", "llama"] = "gpt_neox"
    depths: tuple[int, ...] = (3,)
    d_model: int = 64
    n_heads: int = 4
    d_mlp: int = 256
    seeds: tuple[int, ...] = (0, 1, 2)
    label_noise: tuple[float, ...] = (0.0, 0.2)
    composite_fraction: tuple[float, ...] = (0.0,)
    pretrain_composites: tuple[str, ...] = ()
    steps: int = 3000
    checkpoints: tuple[int, ...] = (0, 100, 300, 1000, 3000)
    batch_size: int = 64
    lr: float = 3e-3
    n_digits: int = 6
    base: int = 10
    n_slots: int = 2
    write_intermediates: bool = False
    step_fraction: float = 0.0
    n_eval: int = 256

    def __post_init__(self) -> None:
        if not self.depths or min(self.depths) < 1:
            raise ConfigError("depths must list at least one positive number of layers")
        if not self.seeds:
            raise ConfigError("seeds must list at least one seed")
        if not self.checkpoints or any(not 0 <= c <= self.steps for c in self.checkpoints):
            raise ConfigError(f"checkpoints must lie in 0..steps ({self.steps}), got {self.checkpoints}")
        if any(not 0.0 <= p <= 1.0 for p in self.label_noise) or not self.label_noise:
            raise ConfigError(f"label_noise rates must lie in [0, 1], got {self.label_noise}")
        if any(not 0.0 <= f < 1.0 for f in self.composite_fraction) or not self.composite_fraction:
            raise ConfigError(f"composite_fraction values must lie in [0, 1), got {self.composite_fraction}")
        for name in self.pretrain_composites:
            parse_task_name(name)
        if self.step_fraction and not (self.write_intermediates and self.n_slots == 2):
            raise ConfigError("step_fraction > 0 needs write_intermediates = true and two slots")
        if not 0.0 <= self.step_fraction + max(self.composite_fraction) < 1.0 or self.step_fraction < 0:
            raise ConfigError(
                f"step_fraction ({self.step_fraction}) plus composite_fraction must leave room for the primitives"
            )
        if self.d_model % self.n_heads:
            raise ConfigError(f"d_model ({self.d_model}) must be a multiple of n_heads ({self.n_heads})")

    @property
    def layout(self) -> TaskLayout:
        return TaskLayout(
            n_digits=self.n_digits, base=self.base, n_slots=self.n_slots, write_intermediates=self.write_intermediates
        )

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def key(self) -> str:
        """A short hash naming this family in the cache: any change of config is a different family."""
        text = json.dumps(self.as_dict(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


@dataclass(frozen=True, order=True)
class Member:
    """One pretraining run of the family: a depth, a seed, a corpus noise rate and a corpus composite share."""

    depth: int
    seed: int
    label_noise: float
    composite_fraction: float = 0.0

    @property
    def name(self) -> str:
        suffix = f"-comp{self.composite_fraction:.2f}" if self.composite_fraction else ""
        return f"L{self.depth}-seed{self.seed}-noise{self.label_noise:.2f}{suffix}"

    @property
    def corpus(self) -> str:
        return "primitives+composites" if self.composite_fraction else "primitives"


def members(config: FamilyConfig) -> list[Member]:
    return [
        Member(d, s, p, c)
        for d in config.depths
        for c in config.composite_fraction
        for p in config.label_noise
        for s in config.seeds
    ]
