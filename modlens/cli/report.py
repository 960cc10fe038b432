"""``modlens report DIR``: rebuild a study's HTML report (and static PNG/PDF figures) from its store."""

import argparse

from modlens.analysis import Answer
from modlens.analysis.correlation import N_PERM
from modlens.errors import ConfigError
from modlens.report import write_study_report
from modlens.report.study_report import primary_display

HELP = "rebuild a study's report (report.html, figures/main.png|pdf) from its results directory"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", metavar="DIR", help="the study's results directory (modlens study --out DIR)")
    parser.add_argument("--out", default=None, metavar="FILE", help="the HTML file (default: DIR/report.html)")
    parser.add_argument("--no-static", action="store_true", help="skip the static PNG/PDF figures")
    parser.add_argument(
        "--n-perm",
        "--n-boot",  # the former name, from when the intervals were a bootstrap over seeds
        dest="n_perm",
        type=int,
        default=N_PERM,
        help=f"permutations per test (default: {N_PERM})",
    )
    parser.add_argument("--seed", type=int, default=0, help="permutation seed (default: 0)")


def run(args: argparse.Namespace) -> int:
    if args.n_perm < 1:
        raise ConfigError(f"--n-perm must be positive, got {args.n_perm}")
    files = write_study_report(args.dir, out=args.out, static=not args.no_static, n_perm=args.n_perm, seed=args.seed)
    if files.skipped:
        print(f"note: {files.skipped}")
    for path in files.figures:
        print(f"wrote {path}")
    print(f"wrote {files.html}")
    print(answer_text(files.answer))
    return 0


def answer_text(answer: Answer) -> str:
    """The answer as the CLI prints it: the question, the summary sentences, then the primary table."""
    table = primary_display(answer.primary).drop(columns=["note"]).to_string(index=False)
    return "\n".join([answer.question, *(f"- {s}" for s in answer.summary), table])
