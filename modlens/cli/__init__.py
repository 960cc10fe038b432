"""The ``modlens`` command. ``main(argv) -> int`` so tests call it directly; the grammar is in ``parsers.py``."""

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from modlens import __version__
from modlens.cli.parsers import COMMANDS
from modlens.errors import ModlensError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="modlens",
        description="Does pretraining quality change the modularity of fine-tuned models? Measure it.",
    )
    parser.add_argument("--version", action="version", version=f"modlens {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (help_text, add_arguments) in COMMANDS.items():
        add_arguments(sub.add_parser(name, help=help_text, description=help_text))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs one modlens command; user errors print one line to stderr and return a non-zero code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    _quiet_transformers()
    try:
        command = importlib.import_module(f"modlens.cli.{args.command}")  # only now: the heavy imports
        return int(command.run(args))
    except ModlensError as err:
        print(f"modlens {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"modlens {args.command}: interrupted; rerun the same command to continue", file=sys.stderr)
        return 130


def _quiet_transformers() -> None:
    """transformers prints its own bars when writing shards; the CLI shows modlens's progress instead."""
    import transformers

    transformers.utils.logging.disable_progress_bar()


def console_main() -> None:
    """Entry point of the ``modlens`` console script."""
    sys.exit(main())
