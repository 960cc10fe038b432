"""Benchmark: modlens's exact ablation sweep against the plain loop (one ``bridge.run_with_hooks`` per component).

Both run on the same model, batch and components, alternating, several repetitions; the script reports
median times, the speedup, the largest absolute difference between the two result frames (from the
same runs), and the peak memory each needs (measured in a fresh subprocess per method).

Cases:
  small  the embedded family's 3-layer GPT-NeoX (d_model 64, pretrained 300 steps on the primitives;
         built once into the modlens cache; other depths with --small-depth), all heads + all MLP layers,
         a synthetic task batch.
  gpt2   a randomly initialised GPT-2-small-shaped model (12 layers x 12 heads, d_model 768, d_vocab
         50257) on 32 random prompts of 32 tokens, the answer being the last token; all 144 heads and
         the 12 MLP layers by default.

``--device cuda`` runs both on a GPU (the model is built on the CPU, then moved); peak memory is then
torch's peak allocation during one run of each method.

Usage:
  python benchmarks/ablation_sweep.py [--case small|gpt2|all] [--repeats 3] [--device cpu|cuda] [--warm-allocator]
                                     [--json PATH]
"""

import argparse
import gc
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import threading
import time
from typing import Any

import torch

from modlens.ablation import run_ablation_loop, run_ablation_sweep
from modlens.components import Component, enumerate_components
from modlens.models import Model, tiny_model
from modlens.tasks import Batch, SyntheticTask, loss


def small_case(args: argparse.Namespace) -> tuple[Model, Batch, list[Component], dict[str, Any]]:
    from modlens.zoo import FamilyConfig, build_family

    depth = args.small_depth
    config = FamilyConfig(depths=(depth,), seeds=(0,), label_noise=(0.0,), steps=300, checkpoints=(300,))
    family = build_family(config, progress=False)
    model = family.load(family.members[0], 300)
    batch = SyntheticTask.from_name("reverse", config.layout).sample(args.small_examples, split="test", seed=0)
    comps = enumerate_components(model.spec, "head") + enumerate_components(model.spec, "mlp")
    info = {"model": f"zoo GPT-NeoX {depth} layers, d_model 64, 4 heads, d_mlp 256, 300 pretraining steps",
            "batch": f"{len(batch)} x {batch.n_pos} tokens (task 'reverse')"}  # fmt: skip
    return model, batch, comps, info


def gpt2_case(args: argparse.Namespace) -> tuple[Model, Batch, list[Component], dict[str, Any]]:
    model = tiny_model("gpt2", d_vocab=50257, n_layers=12, d_model=768, n_heads=12, d_mlp=3072, n_ctx=1024, seed=0)
    gen = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, 50257, (32, 32), generator=gen)
    mask = torch.zeros_like(tokens, dtype=torch.bool)
    mask[:, -1] = True
    batch = Batch(tokens, mask, "random")
    heads = [c for c in enumerate_components(model.spec, "head") if c.index < args.gpt2_heads_per_layer]
    mlps = enumerate_components(model.spec, "mlp") if args.gpt2_mlps else []
    info = {"model": "random GPT-2-small shape: 12 layers x 12 heads, d_model 768, d_mlp 3072, d_vocab 50257",
            "batch": "32 x 32 random tokens; answer = last token"}  # fmt: skip
    return model, batch, heads + mlps, info


CASES = {"small": small_case, "gpt2": gpt2_case}


def on_device(case: str, args: argparse.Namespace) -> tuple[Model, Batch, list[Component], dict[str, Any]]:
    model, batch, comps, info = CASES[case](args)
    if args.device != "cpu":
        model = model.with_weights(model.hf.to(args.device))
        info = {**info, "device": torch.cuda.get_device_name() if args.device.startswith("cuda") else args.device}
    return model, batch.to(model.device), comps, info


def gpu_peak_memory_mb(
    model: Model, batch: Batch, comps: list[Component], args: argparse.Namespace
) -> dict[str, float]:
    """Peak device memory each method allocates over what the model and batch hold (one run each)."""
    peaks = {}
    for name in ("loop", "sweep"):
        torch.cuda.synchronize()
        before = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        run_method(name, model, batch, comps, args.replacement)
        peaks[f"{name}_peak_mb"] = (torch.cuda.max_memory_allocated() - before) / 2**20
    return peaks


def run_method(name: str, model: Model, batch: Batch, comps: list[Component], replacement: str) -> Any:
    if name == "loop":
        return run_ablation_loop(model, batch, comps, replacement=replacement, metric=loss)  # type: ignore[arg-type]
    return run_ablation_sweep(model, batch, comps, replacement=replacement, metric=loss, progress=False)  # type: ignore[arg-type]


def peak_memory_mb(case: str, name: str, args: argparse.Namespace) -> float:
    """Peak resident memory a method adds, measured in a fresh process (so runs do not share a high-water mark)."""
    cmd = [sys.executable, __file__, "--memory-child", case, name, "--replacement", args.replacement, "--threads",
           str(args.threads), "--gpt2-heads-per-layer", str(args.gpt2_heads_per_layer),
           *([] if args.gpt2_mlps else ["--no-gpt2-mlps"]),
           "--small-examples", str(args.small_examples), "--small-depth", str(args.small_depth)]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def memory_child(case: str, name: str, args: argparse.Namespace) -> None:
    """Prints the peak resident memory one run adds over the memory held before it (sampled every 2 ms)."""
    model, batch, comps, _ = on_device(case, args)
    run_method(name, model, batch, comps[:1], args.replacement)  # warm-up: bridge booted, code paths touched
    gc.collect()
    before = _rss_mb()
    peak = before
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _rss_mb())
            time.sleep(0.002)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    run_method(name, model, batch, comps, args.replacement)
    done.set()
    sampler.join()
    print(max(peak, _rss_mb()) - before)


def warm_allocator() -> None:
    """Frees a 30 MiB block, so that glibc keeps freed activations mapped from then on.

    glibc serves blocks above its mmap threshold (128 KiB at start) with fresh mappings and returns freed
    heap tops to the OS; every first touch of such memory is a page fault. Freeing a mapped block raises
    both thresholds to that block's size (up to 32 MiB), which any process that frees a large tensor (loading
    a real model does) has done already. With this small model nothing did, and each method's forwards
    fault a varying number of pages on every run, which slowed both by 20-35% here.
    """
    block = torch.empty(30 << 20, dtype=torch.uint8)
    del block


def bench_case(case: str, args: argparse.Namespace) -> dict[str, Any]:
    model, batch, comps, info = on_device(case, args)
    # warm-up: boot the bridge, touch every code path once
    run_method("loop", model, batch, comps[:1], args.replacement)
    run_method("sweep", model, batch, comps[:1], args.replacement)
    times: dict[str, list[float]] = {"loop": [], "sweep": []}
    faults: dict[str, list[int]] = {"loop": [], "sweep": []}
    max_diff = 0.0
    for rep in range(args.repeats):
        frames = {}
        for name in ("loop", "sweep") if rep % 2 == 0 else ("sweep", "loop"):
            faults_before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            start = time.perf_counter()
            frames[name] = run_method(name, model, batch, comps, args.replacement)
            times[name].append(time.perf_counter() - start)
            faults[name].append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults_before)
            print(f"  {case} rep {rep}: {name} {times[name][-1]:.2f} s", file=sys.stderr, flush=True)
        for col in ("clean", "ablated", "change"):
            diff = (frames["loop"][col] - frames["sweep"][col]).abs().max()
            max_diff = max(max_diff, float(diff))
    med = {k: statistics.median(v) for k, v in times.items()}
    result = {
        **info,
        "components": f"{len(comps)} ({', '.join(sorted({c.kind for c in comps}))})",
        "replacement": args.replacement,
        "metric": "loss",
        "repeats": args.repeats,
        "loop_s": times["loop"],
        "sweep_s": times["sweep"],
        "loop_median_s": med["loop"],
        "sweep_median_s": med["sweep"],
        "speedup": med["loop"] / med["sweep"],
        "max_abs_diff": max_diff,
        "page_faults_median": {k: statistics.median(v) for k, v in faults.items()},
    }
    if not args.no_memory and model.device.type == "cuda":
        result.update(gpu_peak_memory_mb(model, batch, comps, args))
    elif not args.no_memory:
        result["loop_peak_mb"] = peak_memory_mb(case, "loop", args)
        result["sweep_peak_mb"] = peak_memory_mb(case, "sweep", args)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--case", choices=[*CASES, "all"], default="all")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--replacement", default="mean", choices=["zero", "mean", "resample"])
    parser.add_argument("--small-examples", type=int, default=128, help="examples in the small case's batch")
    parser.add_argument("--small-depth", type=int, default=3, help="layers of the small case's family model")
    parser.add_argument("--gpt2-heads-per-layer", type=int, default=12, help="heads per layer in the gpt2 case")
    parser.add_argument("--no-gpt2-mlps", dest="gpt2_mlps", action="store_false", help="gpt2 case: heads only")
    parser.add_argument("--device", default="cpu", help="torch device to run on (default cpu)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--memory-only", action="store_true", help="only measure peak memory (no timing)")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    parser.add_argument("--warm-allocator", action="store_true", help="free a 30 MiB block first (see below)")
    parser.add_argument("--json", metavar="PATH", help="write the figures as JSON")
    parser.add_argument("--memory-child", nargs=2, metavar=("CASE", "METHOD"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.warm_allocator:
        warm_allocator()
    if args.memory_child:
        memory_child(*args.memory_child, args)
        return
    cases = list(CASES) if args.case == "all" else [args.case]
    if args.memory_only:
        memory = {c: {f"{m}_peak_mb": peak_memory_mb(c, m, args) for m in ("loop", "sweep")} for c in cases}
        print(json.dumps(memory, indent=2))
        if args.json:
            with open(args.json, "w") as f:
                json.dump(memory, f, indent=2)
        return
    report = {
        "machine": {
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "warm_allocator": args.warm_allocator,
            "device": args.device,
            "note": "shared machine: other engineers' jobs ran at the same time (see load averages)",
            "load_average_at_start": os.getloadavg(),
            "python": platform.python_version(),
            "torch": torch.__version__,
        },
        "cases": {case: bench_case(case, args) for case in cases},
    }
    report["machine"]["load_average_at_end"] = os.getloadavg()
    for case, r in report["cases"].items():
        mem = (
            f", peak memory loop {r['loop_peak_mb']:.0f} MB / sweep {r['sweep_peak_mb']:.0f} MB"
            if "loop_peak_mb" in r
            else ""
        )
        print(f"{case}: {r['components']} components, loop {r['loop_median_s']:.2f} s, "
              f"sweep {r['sweep_median_s']:.2f} s, speedup {r['speedup']:.1f}x, "
              f"max |diff| {r['max_abs_diff']:.2e}{mem}")  # fmt: skip
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
