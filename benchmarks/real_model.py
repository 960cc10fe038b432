"""Benchmark on a real pretrained LM: activation patching of every attention head, exact sweep against the
plain loop (one ``bridge.run_with_hooks`` per head), attribution patching's agreement, and the peak memory of
``modlens ablate`` and ``modlens drift``.

The model is SmolLM2-135M-Instruct (Llama family, 30 layers x 9 heads, grouped-query attention), made
available offline by ``../shared/tools/prep_smollm2.sh DIR .venv/bin/python``; the prompts are 24 IOI-style
pairs (``benchmarks/data/ioi_pairs.jsonl``: the clean prompt's answer is the indirect object, the corrupted
prompt repeats the other name, so its answer is the subject). Sweep and loop run alternately, ``--repeats``
times each; the largest absolute difference between their frames comes from the same runs. Peak memory is
each command's maximum resident set size, run in a fresh process. The IOI pairs share their first 9 tokens,
which the sweep does not recompute (patches there change nothing); ``--mean-ablation`` instead times mean
ablation of every head on the clean prompts, where every position is edited.

Usage:
  python benchmarks/real_model.py --model DIR [--repeats 3] [--json PATH] [--figure PATH] [--no-memory]
                                  [--mean-ablation]
"""

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from modlens.ablation import compare_attribution
from modlens.components import enumerate_components
from modlens.models import load_model
from modlens.patching import (
    load_patching_batch,
    patching_metric,
    run_attribution_patching_pairs,
    run_patching_loop,
    run_patching_sweep,
)

PROMPTS = Path(__file__).parent / "data" / "ioi_pairs.jsonl"


def timed(fn: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def peak_rss_mb(command: list[str]) -> float:
    """The maximum resident set size of ``command``, run in a fresh process of its own."""
    probe = (
        "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    out = subprocess.run([sys.executable, "-c", probe, *command], capture_output=True, text=True, check=True)
    return int(out.stdout.strip().splitlines()[-1]) / 1024


def memory(model_dir: str, prompts: Path) -> dict[str, Any]:
    modlens = str(Path(sys.executable).with_name("modlens"))
    with tempfile.TemporaryDirectory() as tmp:
        ablate = [modlens, "ablate", model_dir, "--prompts", str(prompts), "--components", "heads",
                  "--no-progress", "--out", f"{tmp}/ablate"]  # fmt: skip
        drift = [modlens, "drift", model_dir, model_dir, "--prompts", str(prompts), "--out", f"{tmp}/drift"]
        return {"ablate_peak_rss_mb": peak_rss_mb(ablate), "drift_peak_rss_mb": peak_rss_mb(drift)}


def versus(sweep: Any, loop: Any, column: str, repeats: int) -> tuple[dict[str, list[float]], list[float], Any]:
    """Loop and sweep run alternately ``repeats`` times: their times, and the largest difference of ``column``."""
    times: dict[str, list[float]] = {"loop": [], "sweep": []}
    diffs = []
    for _ in range(repeats):
        t_loop, slow = timed(loop)
        t_sweep, fast = timed(sweep)
        times["loop"].append(t_loop)
        times["sweep"].append(t_sweep)
        diffs.append(float((fast[column] - slow[column]).abs().max()))
    return times, diffs, fast


def mean_ablation_case(model: Any, batch: Any, heads: list[Any], repeats: int) -> dict[str, Any]:
    """Mean ablation of every head on the clean prompts (no shared prefix to skip), logit difference metric."""
    from modlens.ablation import run_ablation_loop, run_ablation_sweep
    from modlens.tasks import logit_diff

    def sweep() -> pd.DataFrame:
        return run_ablation_sweep(model, batch, heads, replacement="mean", metric=logit_diff, progress=False)

    def loop() -> pd.DataFrame:
        return run_ablation_loop(model, batch, heads, replacement="mean", metric=logit_diff)

    times, diffs, _ = versus(sweep, loop, "ablated", repeats)
    loop_s, sweep_s = statistics.median(times["loop"]), statistics.median(times["sweep"])
    print(f"mean ablation of {len(heads)} heads: loop {loop_s:.2f} s, sweep {sweep_s:.2f} s, "
          f"{loop_s / sweep_s:.2f}x; max abs diff {max(diffs):.2e}")  # fmt: skip
    return {"case": "mean ablation, logit_diff, clean prompts", "heads": len(heads), "loop_seconds": times["loop"],
            "sweep_seconds": times["sweep"], "speedup": loop_s / sweep_s, "max_abs_diff": max(diffs),
            "threads": torch.get_num_threads()}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="SmolLM2-135M directory (prep_smollm2.sh)")
    parser.add_argument("--prompts", default=str(PROMPTS))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", default=None)
    parser.add_argument("--figure", default=None, help="PNG of the per-position residual-stream patching")
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument(
        "--mean-ablation", action="store_true", help="instead: mean ablation of every head, sweep against loop"
    )
    args = parser.parse_args()

    model = load_model(args.model)
    pairs = load_patching_batch(args.prompts, model.tokenizer, n_ctx=model.spec.n_ctx)
    metric = patching_metric(model, pairs)
    heads = enumerate_components(model.spec, "head")

    def sweep() -> pd.DataFrame:
        return run_patching_sweep(model, pairs, heads, direction="denoising", metric=metric, progress=False)

    def loop() -> pd.DataFrame:
        return run_patching_loop(model, pairs, heads, direction="denoising", metric=metric)

    run_patching_sweep(model, pairs, heads[:1], metric=metric, progress=False)  # warm-up: bridge booted
    run_patching_loop(model, pairs, heads[:1], metric=metric)
    if args.mean_ablation:
        ablation = mean_ablation_case(model, pairs.clean, heads, args.repeats)
        if args.json:
            Path(args.json).write_text(
                json.dumps({"model": args.model, "spec": model.spec.as_dict(), **ablation}, indent=2)
            )
        return
    times, diffs, fast = versus(sweep, loop, "patched", args.repeats)
    loop_s, sweep_s = statistics.median(times["loop"]), statistics.median(times["sweep"])
    print(f"patching {len(heads)} heads: loop {loop_s:.2f} s, sweep {sweep_s:.2f} s, {loop_s / sweep_s:.2f}x; "
          f"max abs diff {max(diffs):.2e}")  # fmt: skip

    agreement = {}
    for direction in ("denoising", "noising"):
        exact = (
            fast
            if direction == "denoising"
            else run_patching_sweep(model, pairs, heads, direction=direction, metric=metric, progress=False)
        )
        t_attr, estimate = timed(
            lambda d=direction: run_attribution_patching_pairs(model, pairs, heads, direction=d, metric=metric)
        )
        check = compare_attribution(estimate, exact, key="site")
        agreement[direction] = {"spearman": check.spearman, "top_10_overlap": check.top_k_overlap, "seconds": t_attr}
        print(f"attribution ({direction}): Spearman {check.spearman:.3f}, top-10 overlap {check.top_k_overlap:.2f}, "
              f"{t_attr:.2f} s")  # fmt: skip
    top = fast.reindex(fast["change"].abs().sort_values(ascending=False).index).head(8)
    effects = ", ".join(f"{s} {v:.2f}" for s, v in zip(top["site"], top["patched"], strict=True))
    print(f"largest denoising effects: {effects}")

    resid = enumerate_components(model.spec, "resid")
    t_resid, by_position = timed(
        lambda: run_patching_sweep(
            model, pairs, resid, positions="each", direction="denoising", metric=metric, progress=False
        )
    )
    if args.figure:
        from modlens.plots.patching import plot_patching_heatmap
        from modlens.report import save_figure

        tokens = [model.tokenizer.decode([int(t)]) for t in pairs.clean.tokens[0]]
        fig = plot_patching_heatmap(by_position, kind="resid", tokens=tokens)
        fig.update_layout(width=900, height=700)
        save_figure(fig, args.figure)

    result: dict[str, Any] = {
        "model": args.model,
        "spec": model.spec.as_dict(),
        "prompts": f"{len(pairs)} pairs x {pairs.n_pos} tokens ({Path(args.prompts).name})",
        "logit_diff_clean": metric.clean_value,
        "logit_diff_corrupted": metric.corrupt_value,
        "heads": len(heads),
        "loop_seconds": times["loop"],
        "sweep_seconds": times["sweep"],
        "speedup": loop_s / sweep_s,
        "max_abs_diff": max(diffs),
        "attribution": agreement,
        "top_denoising_heads": dict(zip(top["site"], top["patched"], strict=True)),
        "resid_by_position_seconds": t_resid,
        "resid_by_position_sites": len(by_position),
        "threads": torch.get_num_threads(),
        "machine": platform.processor() or platform.machine(),
        "param_mb_float32": sum(p.numel() for p in model.hf.parameters()) * 4 / 2**20,
    }
    if not args.no_memory:
        result.update(memory(args.model, Path(args.prompts)))
        print(f"peak RSS: ablate {result['ablate_peak_rss_mb']:.0f} MB, drift {result['drift_peak_rss_mb']:.0f} MB "
              f"(float32 weights {result['param_mb_float32']:.0f} MB)")  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
