"""Benchmark: weight + activation drift of two random GPT-2-small-shaped models (12 layers, d_model 768).

Runs the work in a child process and reports wall time per stage and peak extra memory (RSS sampled every
20 ms by psutil, above the RSS once both models are loaded), beside the floor set by two plain HF forward
passes over the same tokens. The "fine-tune" adds noise to the upper half of the blocks (``--perturb upper``,
the target case: frozen matrices are decomposed once) or to every parameter (``--perturb all``).

    .venv/bin/python benchmarks/drift.py [--n-seqs 256] [--n-pos 64] [--threads 2] [--perturb upper] [--json PATH]
"""

import argparse
import copy
import json
import os
import subprocess
import sys
import threading
import time

import psutil
import torch


class PeakRSS:
    """Samples this process's RSS in a background thread; ``peak`` is the largest seen."""

    def __init__(self, interval: float = 0.02) -> None:
        self.process = psutil.Process()
        self.peak = self.process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(interval,), daemon=True)

    def _run(self, interval: float) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(interval)

    def __enter__(self) -> "PeakRSS":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.process.memory_info().rss)


def _word_tokenizer(size: int):  # type: ignore[no-untyped-def]
    """A disk-backed tokenizer of ``size`` tokens (the bridge reloads tokenizers from disk)."""
    import tempfile

    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    tk = Tokenizer(models.WordLevel(vocab={f"t{i}": i for i in range(size)}, unk_token="t0"))
    tk.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    directory = tempfile.mkdtemp(prefix="modlens-bench-tok-")
    PreTrainedTokenizerFast(tokenizer_object=tk, unk_token="t0", pad_token="t0").save_pretrained(directory)
    return AutoTokenizer.from_pretrained(directory)


def child(args: argparse.Namespace) -> dict:
    from transformers.utils import logging as hf_logging

    from modlens.drift import run_activation_drift, run_weight_drift
    from modlens.models import tiny_model
    from modlens.tasks import Batch

    hf_logging.disable_progress_bar()
    torch.set_num_threads(args.threads)
    mib = 2**20
    shape = {"n_layers": 12, "d_model": 768, "n_heads": 12, "d_mlp": 3072, "n_ctx": 1024}
    base = tiny_model("gpt2", tokenizer=_word_tokenizer(args.d_vocab), seed=0, **shape)
    hf = copy.deepcopy(base.hf)
    gen = torch.Generator().manual_seed(1)
    tuned_params = hf.transformer.h[6:].parameters() if args.perturb == "upper" else hf.parameters()
    with torch.no_grad():  # a "fine-tune" of the upper half of the blocks, or of everything
        for p in tuned_params:
            p.add_(0.002 * torch.randn(p.shape, generator=gen))
    tuned = base.with_weights(hf)
    tokens = torch.randint(3, args.d_vocab, (args.n_seqs, args.n_pos), generator=gen)
    mask = torch.zeros_like(tokens, dtype=torch.bool)
    mask[:, -1] = True
    batch = Batch(tokens, mask, "random")
    proc = psutil.Process()
    baseline = proc.memory_info().rss
    result: dict = {"config": vars(args) | shape, "threads": torch.get_num_threads()}
    with PeakRSS() as rss:
        t0 = time.perf_counter()
        base.bridge, tuned.bridge  # noqa: B018  # boot both bridges (each wraps its own copy of the weights)
        t1 = time.perf_counter()
        after_boot = proc.memory_info().rss
        weights = run_weight_drift(base, tuned)
        t2 = time.perf_counter()
        activations = run_activation_drift(base, tuned, batch, batch_size=args.batch_size)
        t3 = time.perf_counter()
    result |= {
        "bridge_boot_s": t1 - t0,
        "weight_drift_s": t2 - t1,
        "activation_drift_s": t3 - t2,
        "drift_total_s": t3 - t1,
        "total_with_boot_s": t3 - t0,
        "rss_baseline_mib": baseline / mib,
        "bridges_mib": (after_boot - baseline) / mib,
        "peak_extra_mib": (rss.peak - baseline) / mib,
        "peak_extra_excluding_bridges_mib": (rss.peak - after_boot) / mib,
        "weight_rows": len(weights),
        "activation_rows": len(activations),
    }
    if not args.skip_floor:  # the floor: both models' plain HF transformer forward over the same tokens
        t = time.perf_counter()
        with torch.no_grad():
            for model in (base, tuned):
                for chunk in tokens.split(args.batch_size):
                    model.hf.transformer(chunk)
        result["plain_forward_both_models_s"] = time.perf_counter() - t
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-seqs", type=int, default=256)
    parser.add_argument("--n-pos", type=int, default=64)
    parser.add_argument("--d-vocab", type=int, default=50257)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads (default: both cores)")
    parser.add_argument("--perturb", choices=("upper", "all"), default="upper", help="which parameters change")
    parser.add_argument("--skip-floor", action="store_true", help="skip timing the plain forward passes")
    parser.add_argument("--json", metavar="PATH", help="also write the result as JSON")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args)))
        return 0
    argv = [sys.executable, __file__, "--child", *sys.argv[1:]]
    env = os.environ | {"TOKENIZERS_PARALLELISM": "false"}
    done = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        return done.returncode
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["load_average"] = os.getloadavg()
    for key, value in result.items():
        print(f"{key:36s} {value:.2f}" if isinstance(value, float) else f"{key:36s} {value}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
