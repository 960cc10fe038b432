"""Benchmark: time to fit component and weight masks on a small family model (3 layers, d_model 64, GPT-NeoX).

Pretrains the model on the six primitives first (not timed as part of the masks), then fits a mask for
``reverse`` with each algorithm at each granularity, and reports wall time, kept units and held-out
accuracy with the mask alone and with it removed.

    .venv/bin/python benchmarks/masks.py [--pretrain-steps 1000] [--mask-steps 200] [--threads 1] [--json PATH]
"""

import argparse
import json
import tempfile
import time

import torch
from transformers import AutoTokenizer

from modlens.masks import fit_mask
from modlens.models import tiny_model
from modlens.modularity import masked_accuracy
from modlens.tasks import PRIMITIVES, SyntheticTask, TaskLayout, answer_accuracy
from modlens.training import PretrainConfig, pretrain


def small_family_model(steps: int):
    layout = TaskLayout()
    directory = tempfile.mkdtemp(prefix="modlens-bench-tok-")
    layout.vocab.tokenizer().save_pretrained(directory)
    tokenizer = AutoTokenizer.from_pretrained(directory)
    init = tiny_model("gpt_neox", tokenizer=tokenizer, n_layers=3, d_model=64, n_heads=4, d_mlp=256, n_ctx=32)
    tasks = [SyntheticTask((p,), layout) for p in PRIMITIVES]
    trajectory = pretrain(init, tasks, PretrainConfig(steps=steps, checkpoints=(steps,), seed=0), progress=False)
    return trajectory.checkpoints[steps], layout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pretrain-steps", type=int, default=1000)
    parser.add_argument("--mask-steps", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest for models this small)")
    parser.add_argument("--json", default=None, metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    started = time.perf_counter()
    model, layout = small_family_model(args.pretrain_steps)
    pretrain_s = time.perf_counter() - started
    task = SyntheticTask.from_name("reverse", layout)
    fit_batch, eval_batch = task.sample(256, split="train"), task.sample(256, split="test")
    full = float(answer_accuracy(model.logits(eval_batch.tokens), eval_batch))
    _ = model.bridge  # boot once, outside the timings
    print(f"pretrained {args.pretrain_steps} steps in {pretrain_s:.1f} s; held-out reverse accuracy {full:.3f}")

    results = []
    for granularity in ("component", "weight"):
        for algorithm in ("continuous_sparsification", "hard_concrete"):
            t0 = time.perf_counter()
            mask = fit_mask(
                model, fit_batch, granularity=granularity, algorithm=algorithm, steps=args.mask_steps, seed=0
            )
            seconds = time.perf_counter() - t0
            how = "mean" if granularity == "component" else "zero"
            row = {
                "granularity": granularity,
                "algorithm": algorithm,
                "steps": args.mask_steps,
                "seconds": round(seconds, 2),
                "kept": mask.size,
                "units": mask.n_units,
                "accuracy_full": full,
                "accuracy_inside": masked_accuracy(model, mask, eval_batch, keep="inside", replacement=how),
                "accuracy_outside": masked_accuracy(model, mask, eval_batch, keep="outside", replacement=how),
            }
            results.append(row)
            print(
                f"{granularity:9s} {algorithm:26s} {seconds:6.1f} s  kept {mask.size}/{mask.n_units}  "
                f"acc alone {row['accuracy_inside']:.3f}  removed {row['accuracy_outside']:.3f}"
            )
    report = {
        "model": "gpt_neox 3 layers, d_model 64, 4 heads, d_mlp 256",
        "pretrain_steps": args.pretrain_steps,
        "pretrain_seconds": round(pretrain_s, 1),
        "threads": args.threads,
        "results": results,
    }
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(report, handle, indent=2)


if __name__ == "__main__":
    main()
