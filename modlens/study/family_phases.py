"""The study's unit over a checkpoint a family file names: load it (or build its random-init control), measure
its pretraining quality as the built-in study does, then fine-tune and measure it with the same code
(``modlens.study.phases.measure_checkpoint``), every batch written in the checkpoint's tokenizer."""

from typing import Any

import torch

from modlens.models.model import Model
from modlens.resolve import ModelRef, load_ref
from modlens.study.family_file import ResolvedCheckpoint
from modlens.study.finetuning import study_method
from modlens.study.phases import measure_checkpoint
from modlens.study.presets import StudyConfig
from modlens.study.prompt_phases import measure_prompt_checkpoint
from modlens.study.tasks import StudyTasks
from modlens.tasks.metrics import evaluate
from modlens.tasks.prompts import load_prompt_batch
from modlens.zoo.build import quality_batches


def family_checkpoint_unit(
    config: dict[str, Any],
    checkpoint: dict[str, Any],
    name: str,
    seed: int,
    method: str = "full",
    quality: str | None = None,
    capability: str | None = None,
    record_quality: bool = True,
    finetune: str | None = None,
    heldout_prompts: str | None = None,
) -> list[dict[str, Any]]:
    """Quality rows (when ``record_quality``: one unit per checkpoint records them) and the checkpoint unit's rows
    for one checkpoint of trajectory ``(name, seed)``, fine-tuned by ``method``.

    Rows carry ``depth`` (the model's layers), ``seed``, ``corpus`` (the trajectory's name) and ``step``; no
    ``label_noise`` (a family file has no such factor, so the analysis does not group by it). ``quality`` and
    ``capability`` are the family file's prompt files: the first replaces the primitives as the measure of
    pretraining quality (its answer loss), the second is the capability set whose retention is measured.
    ``finetune`` and ``heldout_prompts`` (both or neither): the prompt files fine-tuned on and scored for transfer
    instead of the synthetic tasks (``modlens.study.prompt_phases``).
    """
    study = StudyConfig.from_dict(config)
    point = ResolvedCheckpoint(**checkpoint)
    base = load_checkpoint(point, seed=seed)
    common = {"depth": base.spec.n_layers, "seed": seed, "corpus": name, "step": point.step}
    prompts = {
        key: load_prompt_batch(path, base.tokenizer, n_ctx=base.spec.n_ctx)
        for key, path in (("quality", quality), ("capability", capability), ("heldout", heldout_prompts))
        if path is not None
    }
    rendering = StudyTasks.for_model(study, base).rendering  # the tasks in the checkpoint's own tokens
    batches = quality_batches(study.family, rendering=rendering)
    if "quality" in prompts:
        batches["prompts"] = prompts["quality"]
    with torch.no_grad():
        rows = [
            {"table": "quality", **common, "task": task, **evaluate(base.logits(batch.tokens), batch)}
            for task, batch in batches.items()
        ]
    if finetune is not None:
        measured = measure_prompt_checkpoint(
            study,
            base,
            common,
            finetune=finetune,
            heldout=prompts["heldout"],
            method=study_method(method),
            capability=prompts.get("capability"),
            quality=prompts.get("quality"),
        )
    else:
        measured = measure_checkpoint(
            study,
            base,
            common,
            method=study_method(method),
            capability=prompts.get("capability"),
            quality=prompts.get("quality"),
        )
    return (rows if record_quality else []) + measured


def load_checkpoint(point: ResolvedCheckpoint, *, seed: int) -> Model:
    """The checkpoint's model; for the control, a random initialisation from its config, seeded with ``seed``
    (the global torch generator is left as it was)."""
    model = load_ref(ModelRef(point.source, point.revision, point.label))
    if not point.control:
        return model
    from transformers import AutoModelForCausalLM

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        hf = AutoModelForCausalLM.from_config(model.hf.config, attn_implementation="eager")
    for p in hf.parameters():
        p.requires_grad_(False)
    return Model(hf=hf.eval(), tokenizer=model.tokenizer)
