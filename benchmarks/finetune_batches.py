"""Benchmark: a study unit's learning-rate grid with its training batches kept between runs, against drawing
every batch afresh (the reference way, as before batches were kept).

The study fine-tunes each checkpoint once per learning rate, on the same batches (they depend on the step
only), and every unit of a worker process draws the same stream again. Both ways run ``tune_checkpoint``
on the same checkpoint, alternating, several repetitions; the script reports median times, the speedup, and
whether the two ways give bit-identical models (stop-at-target and fixed-budget arms, every parameter).

Case: the study's full-preset shape (4-layer GPT-NeoX, d_model 64, the study's tasks and replay corpus) at
random initialisation, where no method reaches the target, so every rate runs to ``--max-steps``. The
"fresh" repetitions start with no kept batches; the "kept" ones with what the previous one kept, as in a
worker that has fine-tuned a checkpoint before (the first "kept" run draws them itself).

Usage:
  python benchmarks/finetune_batches.py [--method svf] [--max-steps 200] [--repeats 3] [--json PATH]
"""

import argparse
import dataclasses
import importlib
import json
import os
import platform
import statistics
import time
from typing import Any

import torch

from modlens.models import tiny_model
from modlens.study.finetuning import study_method, tune_checkpoint
from modlens.study.presets import PRESETS
from modlens.study.tasks import StudyTasks

finetuning = importlib.import_module("modlens.training.finetune")


def weights(tuning: Any) -> list[torch.Tensor]:
    return [*tuning.target.model.hf.state_dict().values(), *tuning.fixed_budget.hf.state_dict().values()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", default="svf", choices=("full", "upper", "lora", "svf"))
    parser.add_argument("--max-steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)  # as in a study worker

    preset = PRESETS["full"]
    finetune = dataclasses.replace(preset.finetune, max_steps=args.max_steps, fixed_steps=args.max_steps // 2)
    study = dataclasses.replace(preset, finetune=finetune)
    family = study.family
    base = tiny_model(  # as the family initialises a depth-4 member (modlens.zoo.build)
        family.architecture,
        tokenizer=family.layout.vocab.tokenizer(),
        n_layers=4,
        d_model=family.d_model,
        n_heads=family.n_heads,
        d_mlp=family.d_mlp,
        n_ctx=max(32, family.layout.seq_len),
        seed=0,
    )
    tasks = StudyTasks(study)
    fresh_draw = finetuning._remembered

    def run(keep: bool) -> tuple[float, list[torch.Tensor]]:
        finetuning._remembered = fresh_draw if keep else (lambda stream, draw: draw)
        try:
            started = time.perf_counter()
            replay, replay_weights = tasks.replay
            method = study_method(args.method)
            tuning = tune_checkpoint(base, study, tasks.finetune, method, replay=replay, replay_weights=replay_weights)
            return time.perf_counter() - started, weights(tuning)
        finally:
            finetuning._remembered = fresh_draw

    times: dict[str, list[float]] = {"fresh": [], "kept": []}
    reference: list[torch.Tensor] | None = None
    identical = True
    finetuning._STREAMS.clear()
    for repeat in range(args.repeats):
        for way in ("fresh", "kept"):
            seconds, tensors = run(way == "kept")
            times[way].append(seconds)
            reference = tensors if reference is None else reference
            identical &= all(torch.equal(a, b) for a, b in zip(reference, tensors, strict=True))
            print(f"repeat {repeat + 1}/{args.repeats} {way}: {seconds:.1f} s", flush=True)
    fresh, kept = statistics.median(times["fresh"]), statistics.median(times["kept"])
    result = {
        "case": f"tune_checkpoint, full-preset shape, depth 4, random init, method {args.method}",
        "lr_grid": list(study.lr_grid),
        "max_steps": args.max_steps,
        "fixed_steps": finetune.fixed_steps,
        "times": times,
        "median_fresh_s": fresh,
        "median_kept_s": kept,
        "speedup": fresh / kept,
        "bit_identical": identical,
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "load": os.getloadavg()},
        "torch": torch.__version__,
    }
    print(f"median: fresh {fresh:.1f} s, kept {kept:.1f} s, speedup {fresh / kept:.2f}x; bit-identical: {identical}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
