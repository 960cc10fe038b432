"""``modlens study``: the main job. Does pretraining quality change the modularity of fine-tuned models?"""

import argparse
import os
import time
from pathlib import Path

from modlens.config import load_config
from modlens.study import PRESETS, StudyConfig, run_study

HELP = "run the study: pretrain a family to graded quality, fine-tune every checkpoint, measure modularity"


def default_executor() -> str:
    """Two worker processes where there are two cores: the study's units are single-threaded."""
    return "processes:2" if (os.cpu_count() or 1) >= 2 else "local"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", choices=sorted(PRESETS), default="quick", help="starting configuration")
    parser.add_argument("--config", default=None, metavar="FILE.toml", help="study config file (over the preset)")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="override a config key"
    )
    parser.add_argument("--out", default=None, help="results directory (default: results/<preset>)")
    parser.add_argument(
        "--executor",
        default=default_executor(),
        help="local, processes[:N], or dask://HOST:PORT (a Dask scheduler); default: processes:2 where the "
        "machine has 2 cores or more (units run single-threaded, so results are the same on any executor)",
    )
    parser.add_argument("--resume", action="store_true", help="continue an interrupted run of the same study")
    parser.add_argument("--replace", action="store_true", help="discard a different study's store in --out")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def run(args: argparse.Namespace) -> int:
    config = load_config(StudyConfig, path=args.config, overrides=args.overrides, base=PRESETS[args.preset])
    out = Path(args.out or f"results/{args.preset}")
    started = time.perf_counter()
    result = run_study(
        config, out, executor=args.executor, resume=args.resume, replace=args.replace, progress=not args.no_progress
    )
    elapsed = time.perf_counter() - started
    for name, table in (
        ("metrics", result.metrics),
        ("quality", result.quality),
        ("drift_layers", result.drift_layers),
        ("mask_layers", result.mask_layers),
    ):
        table.to_csv(out / f"{name}.csv", index=False)
    from modlens.cli.report import answer_text
    from modlens.report import write_study_report

    files = write_study_report(out)
    print(f"study {config.fingerprint()} in {out} ({elapsed:.0f} s this run)")
    print(answer_text(files.answer))
    print(f"descriptive metrics, figures and tables: {files.html}")
    if files.skipped:
        print(files.skipped)
    return 0
