"""``modlens study``: the main job on the embedded default.

The full study (fine-tuning every checkpoint and measuring modularity) is not built yet; until it is,
this command builds the embedded family and prints its measured pretraining-quality table, the
pretraining-quality axis the study will relate modularity to.
"""

import argparse

from modlens.cli import zoo

HELP = "the main job: currently builds the embedded family and prints its pretraining-quality table"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    zoo.add_arguments(parser)


def run(args: argparse.Namespace) -> int:
    zoo.build_and_report(args)
    print("note: fine-tuning and modularity measurement are not part of this command yet (see the README).")
    return 0
