"""The study's tasks: fine-tuning and held-out composites, the replay corpus, and the fixed evaluation batches."""

import dataclasses
from dataclasses import dataclass
from functools import cached_property

import torch

from modlens.models.model import Model
from modlens.study.presets import StudyConfig
from modlens.tasks.batch import Batch
from modlens.tasks.operations import PRIMITIVES, parse_task_name
from modlens.tasks.rendering import Rendering
from modlens.tasks.synthetic import SyntheticTask, TaskLayout, sample_mixture, step_forms

# Evaluation batches use fixed seeds, so every checkpoint of every run is scored on the same examples.
_SEEDS = {"primitives": 1, "heldout": 2, "finetune": 3, "reference": 4}


@dataclass(frozen=True)
class StudyTasks:
    """Everything a checkpoint unit trains and scores on, derived from the config and the tokenizer's rendering.

    Attributes:
        study: the study's config.
        rendering: how the tasks are written for the checkpoint's tokenizer; ``None`` for the synthetic task
            vocabulary (a checkpoint pretrained on the tasks).
    """

    study: StudyConfig
    rendering: Rendering | None = None

    @classmethod
    def for_model(cls, study: StudyConfig, model: Model) -> "StudyTasks":
        """The study's tasks as ``model`` reads them: rendered for its tokenizer unless that is the synthetic one.

        Raises:
            TaskError: a tokenizer that cannot write every symbol as one token.
        """
        return cls(study, study.family.layout.rendered_for(model.tokenizer).rendering)

    @cached_property
    def layout(self) -> TaskLayout:
        return dataclasses.replace(self.study.family.layout, rendering=self.rendering)

    @cached_property
    def finetune(self) -> list[SyntheticTask]:
        return [SyntheticTask.from_name(n, self.layout) for n in self.study.task_split().finetune]

    @cached_property
    def heldout(self) -> list[SyntheticTask]:
        return [SyntheticTask.from_name(n, self.layout) for n in self.study.task_split().heldout]

    @cached_property
    def primitives(self) -> list[SyntheticTask]:
        return [SyntheticTask((p,), self.layout) for p in PRIMITIVES]

    @cached_property
    def replay(self) -> tuple[list[SyntheticTask], list[float]]:
        """The pretraining corpus's primitive tasks and step forms, weighted as pretraining weighs them."""
        share = self.study.family.step_fraction
        steps = step_forms(self.layout) if share else []
        weights = [(1 - share) / len(self.primitives)] * len(self.primitives)
        weights += [share / len(steps)] * len(steps) if steps else []
        return self.primitives + steps, weights

    def test(self, kind: str) -> Batch:
        """``n_eval`` test-split examples of ``"primitives"``, ``"finetune"`` or ``"heldout"`` composites."""
        tasks = {"primitives": self.primitives, "finetune": self.finetune, "heldout": self.heldout}[kind]
        return sample_mixture(tasks, self.study.n_eval, split="test", seed=_SEEDS[kind])

    def per_task(self, kind: str, n: int) -> dict[str, Batch]:
        """``n`` test examples of every task of a kind, by task name (for per-composite scores)."""
        tasks = {"primitives": self.primitives, "finetune": self.finetune, "heldout": self.heldout}[kind]
        return {t.name: t.sample(n, split="test", seed=_SEEDS[kind]) for t in tasks}

    @cached_property
    def reference(self) -> Batch:
        """The one batch every mean ablation takes its means over: primitives and both composite sets."""
        tasks = self.primitives + self.finetune + self.heldout
        return sample_mixture(tasks, self.study.masks.n_examples, split="val", seed=_SEEDS["reference"])

    def contains(self, task: str, subroutine: str) -> bool:
        return subroutine in parse_task_name(task)

    def part_batches(self, name: str, *, split: str) -> tuple[Batch, Batch]:
        """``masks.n_examples`` of primitive ``name`` and as many of the other primitives (the tasks its part
        should spare), from one split."""
        n = self.study.masks.n_examples
        own = SyntheticTask((name,), self.layout).sample(n, split=split, seed=0)  # type: ignore[arg-type]
        others = [t for t in self.primitives if t.ops != (name,)]
        return own, sample_mixture(others, n, split=split, seed=0)  # type: ignore[arg-type]

    def step_batches(self) -> dict[str, tuple[Batch, Batch]]:
        """The fine-tuning composites' two steps as subroutines: the same prompts with the answer restricted to
        the written intermediate (``"step 1"``) or to the final result (``"step 2"``); fit and gate batches."""
        n = self.study.masks.n_examples
        whole = [sample_mixture(self.finetune, n, split=split, seed=_SEEDS["reference"]) for split in ("train", "test")]
        out = {}
        for index in range(self.layout.n_segments):
            pairs = []
            for batch in whole:
                keep = torch.zeros_like(batch.answer_mask)
                keep[:, self.layout.segment(index)] = True
                pairs.append(Batch(batch.tokens, batch.answer_mask & keep, f"step {index + 1}"))
            out[f"step {index + 1}"] = (pairs[0], pairs[1])
        return out
