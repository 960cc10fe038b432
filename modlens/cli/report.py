"""``modlens report DIR``: rebuild a study's HTML report (and static PNG/PDF figures) from its store."""

import argparse

from modlens.errors import ConfigError
from modlens.report import write_study_report

HELP = "rebuild a study's report (report.html, figures/main.png|pdf) from its results directory"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", metavar="DIR", help="the study's results directory (modlens study --out DIR)")
    parser.add_argument("--out", default=None, metavar="FILE", help="the HTML file (default: DIR/report.html)")
    parser.add_argument("--no-static", action="store_true", help="skip the static PNG/PDF figures")
    parser.add_argument("--n-boot", type=int, default=2000, help="bootstrap resamples over seeds (default: 2000)")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default: 0)")


def run(args: argparse.Namespace) -> int:
    if args.n_boot < 1:
        raise ConfigError(f"--n-boot must be positive, got {args.n_boot}")
    files = write_study_report(args.dir, out=args.out, static=not args.no_static, n_boot=args.n_boot, seed=args.seed)
    if files.skipped:
        print(f"note: {files.skipped}")
    for path in files.figures:
        print(f"wrote {path}")
    print(f"wrote {files.html}")
    print(files.answer.question)
    for sentence in files.answer.summary:
        print(f"- {sentence}")
    return 0
