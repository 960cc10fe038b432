"""``modlens sweep``: run a TOML grid of ablation, mask and drift jobs into a resumable results store."""

import argparse
from pathlib import Path

from modlens.errors import ConfigError
from modlens.executors import EXECUTOR_FORMS, open_executor
from modlens.sweep import STORE_KIND, expand, load_sweep, run_sweep

HELP = "run a TOML grid of ablation, mask and drift jobs (models x tasks x methods x seeds) into a results store"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE.toml", help="sweep file (see examples/sweep.toml)")
    parser.add_argument("--out", metavar="DIR", default=None, help="results directory (default: the file's out)")
    parser.add_argument("--resume", action="store_true", help="continue the same sweep's store, skipping done units")
    parser.add_argument("--replace", action="store_true", help="delete what the output directory holds, start over")
    parser.add_argument(
        "--executor", default=None, help=f"where units run: {', '.join(EXECUTOR_FORMS)} (default: the file's, local)"
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a key: out, executor, device, jobs.N.KEY, or KEY for every job that has it (repeatable)",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def run(args: argparse.Namespace) -> int:
    spec = load_sweep(args.file, args.overrides)
    units = expand(spec)
    out = args.out or spec.out
    if out is None:
        raise ConfigError(f"{args.file}: no output directory; set out in the file or pass --out")
    # The whole file is valid before a worker starts or a directory is touched; the executor is reached
    # before the store is created, so an unreachable cluster leaves nothing behind.
    with open_executor(args.executor or spec.executor) as pool:
        frame = run_sweep(
            spec, out, executor=pool, resume=args.resume, replace=args.replace, progress=not args.no_progress
        )
    root = Path(out).expanduser()
    print(f"{len(units)} units, {len(frame)} rows in the {STORE_KIND} store {str(root)!r}")
    print(f"read them with: modlens.store.Store.read({str(root)!r}).frame()")
    return 0
