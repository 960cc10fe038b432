"""``modlens sweep``: run a TOML grid of ablation, mask and drift jobs into a resumable results store."""

import argparse
from pathlib import Path

from modlens.errors import ConfigError
from modlens.executors import open_executor
from modlens.sweep import STORE_KIND, expand, load_sweep, run_sweep


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
