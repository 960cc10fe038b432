"""The command line's grammar: every subcommand's help and arguments, in one light module.

Building the parser imports no torch, pandas or transformers, so ``modlens --help`` answers at once; a command's
module (``modlens.cli.<name>``, with ``run(args) -> int``) is imported only when that command runs. Flags that
several commands share come from ``flags.py`` and mean the same thing everywhere.
"""

import argparse
import os
from collections.abc import Callable

from modlens import names
from modlens.cli import flags

AddArguments = Callable[[argparse.ArgumentParser], None]


def default_executor() -> str:
    """Two worker processes where there are two cores: the study's units are single-threaded."""
    return "processes:2" if (os.cpu_count() or 1) >= 2 else "local"


def study(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", choices=names.PRESETS, default="quick", help="starting configuration")
    flags.add_config(parser)
    parser.add_argument(
        "--family",
        default=None,
        metavar="FILE.toml",
        help="study the checkpoints this family file lists (trajectories of local directories or hub id + "
        "revision; see examples/pythia_family.toml) instead of pretraining the embedded family",
    )
    parser.add_argument(
        "--plan",
        action="store_true",
        help="with --family: print the units, each one's estimated time (from a short timed probe here) and "
        "memory, and a recommended executor; run nothing else",
    )
    flags.add_output(parser, default="results/<preset>", resume=True)
    executor = default_executor()
    flags.add_executor(
        parser, default=executor, default_text=f"{executor}; units run single-threaded, so any executor gives the same"
    )


def zoo(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--cache-dir", default=None, help="cache directory (default: $MODLENS_CACHE or ~/.cache/modlens)"
    )
    flags.add_config(parser)
    flags.add_progress(parser)


def ablate(parser: argparse.ArgumentParser) -> None:
    flags.add_model(parser)
    flags.add_task(parser)
    flags.add_components(parser)
    flags.add_replacement(parser)
    parser.add_argument("--resample-seed", type=int, default=0, help="seed that draws resample replacements")
    parser.add_argument("--metric", default="loss", choices=names.METRICS, help="metric on the answer tokens")
    flags.add_memory_budget(parser)
    flags.add_output(parser)


def patch(parser: argparse.ArgumentParser) -> None:
    flags.add_model(parser)
    parser.add_argument(
        "--prompts",
        required=True,
        metavar="FILE.jsonl",
        help=f"{flags.MEANINGS['--prompts']}, lines "
        '{"prompt", "answer", "corrupt_prompt", "wrong_answer"}; each pair tokenizes to one length',
    )
    flags.add_components(parser)
    parser.add_argument(
        "--positions",
        default=None,
        help="'each' (every prompt position, one at a time) or comma-separated positions; default: all at once",
    )
    parser.add_argument(
        "--direction",
        default="denoising",
        choices=[*names.DIRECTIONS, "both"],
        help="denoising: corrupted run, clean activation patched in; noising: the reverse",
    )
    parser.add_argument(
        "--attribution", action="store_true", help="also estimate every site by attribution patching, with agreement"
    )
    flags.add_memory_budget(parser)
    flags.add_output(parser)


def drift(parser: argparse.ArgumentParser) -> None:
    flags.add_model(parser, "base", "tuned")
    parser.add_argument("--tuned-revision", default=None, help="hub revision of TUNED (--revision applies to BASE)")
    flags.add_task(parser)
    parser.add_argument(
        "--measures",
        default="linear_cka,debiased_cka,cosine",
        help=f"comma-separated activation measures, from {', '.join(names.MEASURES)}",
    )
    parser.add_argument("--batch-size", type=int, default=8, help="sequences per minibatch (streamed CKA)")
    parser.add_argument("--top-k", type=int, default=8, help="singular subspace size for principal angles")
    flags.add_output(parser)


def mask(parser: argparse.ArgumentParser) -> None:
    flags.add_model(parser)
    flags.add_task(parser)
    parser.add_argument(
        "--algorithm", choices=names.ALGORITHMS, default="continuous_sparsification", help="mask-learning algorithm"
    )
    parser.add_argument(
        "--granularity", choices=names.GRANULARITIES, default="component", help="gate heads+neurons, or weights"
    )
    flags.add_replacement(parser, choices=names.MASK_REPLACEMENTS)
    parser.add_argument("--sparsity", type=float, default=0.5, help="weight of the size penalty, in (0, 1)")
    parser.add_argument("--steps", type=int, default=200, help="optimiser steps")
    parser.add_argument("--mask-seed", type=int, default=0, help="seed of the mask's initialisation and noise")
    flags.add_output(parser)


def sweep(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE.toml", help="sweep file (see examples/sweep.toml)")
    flags.add_config(
        parser, file=False, keys="out, executor, device, dtype, jobs.N.KEY, or KEY for every job that has it"
    )
    flags.add_output(parser, default="the file's out", resume=True)
    flags.add_executor(parser, default=None, default_text="the file's, else local")


def report(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", metavar="DIR", help="the study's results directory (modlens study --out DIR)")
    parser.add_argument("--html", default=None, metavar="FILE", help="the HTML file (default: DIR/report.html)")
    parser.add_argument("--no-static", action="store_true", help="skip the static PNG/PDF figures")
    parser.add_argument("--n-perm", type=int, default=None, help="permutations per test (default: the analysis's)")
    parser.add_argument("--permutation-seed", type=int, default=0, help="seed of the permutation tests (default: 0)")


COMMANDS: dict[str, tuple[str, AddArguments]] = {
    "study": (
        "run the study: pretrain a family to graded quality, fine-tune every checkpoint, measure modularity",
        study,
    ),
    "zoo": ("build or reuse the embedded model family (cached) and print its measured pretraining quality", zoo),
    "ablate": (
        "ablate every head / neuron / MLP layer alone and record the change of a metric (exact, batched)",
        ablate,
    ),
    "patch": (
        "patch each component's activation between clean and corrupted prompts (exact, batched)",
        patch,
    ),
    "drift": (
        "compare a base and a fine-tuned model: weight, spectral and activation (CKA) drift per layer",
        drift,
    ),
    "mask": (
        "learn the sparse subnetwork (mask) a model uses for a task; write the mask, a summary and a density figure",
        mask,
    ),
    "sweep": (
        "run a TOML grid of ablation, mask and drift jobs (models x tasks x replacements x seeds) into a results store",
        sweep,
    ),
    "report": (
        "rebuild a study's report (report.html, figures/main.png|pdf) from its results directory",
        report,
    ),
}
"""Subcommands in the order ``modlens --help`` lists them: (help, add_arguments)."""
