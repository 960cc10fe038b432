"""The ``modlens`` command. ``main(argv) -> int`` so tests call it directly."""

import argparse
import logging
import sys
from collections.abc import Sequence
from types import ModuleType

from modlens.errors import ModlensError


def _commands() -> dict[str, ModuleType]:
    """Subcommand modules by name; each has ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``."""
    from modlens.cli import ablate, drift, mask, patch, report, study, sweep, zoo

    return {
        "study": study,
        "zoo": zoo,
        "ablate": ablate,
        "patch": patch,
        "drift": drift,
        "mask": mask,
        "sweep": sweep,
        "report": report,
    }


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="modlens",
        description="Does pretraining quality change the modularity of fine-tuned models? Measure it.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module in _commands().items():
        module.add_arguments(sub.add_parser(name, help=module.HELP, description=module.HELP))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs one modlens command; user errors print one line to stderr and return a non-zero code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    _quiet_transformers()
    try:
        return int(_commands()[args.command].run(args))
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
