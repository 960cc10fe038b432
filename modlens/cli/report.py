"""``modlens report DIR``: rebuild a study's HTML report (and static PNG/PDF figures) from its store."""

import argparse

from modlens.analysis import Answer
from modlens.analysis.correlation import N_PERM
from modlens.errors import ConfigError
from modlens.report import write_study_report
from modlens.report.study_report import primary_display


def run(args: argparse.Namespace) -> int:
    if args.n_perm is not None and args.n_perm < 1:
        raise ConfigError(f"--n-perm must be positive, got {args.n_perm}")
    files = write_study_report(
        args.dir, out=args.html, static=not args.no_static, n_perm=args.n_perm or N_PERM, seed=args.permutation_seed
    )
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
