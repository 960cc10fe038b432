"""``modlens report DIR``: rebuild a study's HTML report (and static PNG/PDF figures) from its store."""

import argparse

from modlens.analysis import Answer, MethodAnalysis
from modlens.analysis.correlation import N_PERM
from modlens.analysis.methods import absence_mark
from modlens.errors import ConfigError
from modlens.report import write_study_report
from modlens.report.study_report import contrast_display, methods_display, primary_display


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
    if files.methods is not None:
        print(methods_text(files.methods))
    return 0


def answer_text(answer: Answer) -> str:
    """The answer as the CLI prints it: the question, the summary sentences, then the primary table."""
    table = primary_display(answer.primary).drop(columns=["note"]).to_string(index=False)
    return "\n".join([answer.question, *(f"- {s}" for s in answer.summary), table])


def methods_text(methods: MethodAnalysis) -> str:
    """The per-method analysis as the CLI prints it: its sentences, the per-method primary table and the
    contrasts with the headline method."""
    # a reason is a sentence: stated once at the end of the sentences, only its "absent" mark in the tables
    per = methods_display(methods.per_method).drop(columns=["excluded"])
    contrast = contrast_display(methods.contrast)
    per["note"] = per["note"].map(absence_mark)
    contrast["note"] = contrast["note"].map(absence_mark)
    per, contrast = per.to_string(index=False), contrast.to_string(index=False)
    return "\n".join(
        [
            "Per fine-tuning method:",
            *(f"- {s}" for s in methods.sentences),
            per,
            f"Each method minus {methods.headline} at the most-pretrained checkpoints, paired within runs:",
            contrast,
        ]
    )
