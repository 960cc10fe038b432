"""Every flag that more than one subcommand takes, defined once, so that a flag means the same thing everywhere.

``MEANINGS`` is the contract: ``tests/cli/test_flags.py`` checks that every flag two subcommands share is defined
here and reads the same in each (a default may differ; it is said after the meaning). Only light modules are
imported: building the parser must not import torch (``modlens --help`` stays fast).
"""

import argparse
from collections.abc import Sequence

from modlens import names
from modlens.errors import ConfigError
from modlens.sizes import parse_size

MEANINGS = {
    "--revision": "hub revision of the model, e.g. step1000 for a Pythia checkpoint",
    "--device": "torch device the model runs on, e.g. cpu or cuda:0",
    "--dtype": "weight dtype",
    "--task": "synthetic task name, e.g. 'reverse' or 'increment∘reverse' (or 'increment.reverse')",
    "--prompts": "JSONL file of prompts",
    "--n-examples": "examples drawn for a synthetic task",
    "--seed": "seed that draws the examples",
    "--components": "a group (" + "|".join(names.SELECTIONS) + ") or comma-separated addresses such as "
    "L0H1,L1.mlp,L2N17,L2.resid",
    "--replacement": "what an ablated activation becomes",
    "--memory-budget": "activation memory one stacked forward may use, e.g. 512MB or 2GB (a bare number is MB)",
    "--out": "output directory",
    "--replace": "replace what the output directory holds (results of another run) instead of refusing",
    "--resume": "continue an interrupted run of the same job in the output directory, skipping finished units",
    "--no-progress": "hide progress bars",
    "--config": "config file (TOML) whose keys override the defaults",
    "--set": "override one config key, e.g. --set steps=50 (repeatable; applied after --config)",
    "--executor": "where units run: " + ", ".join(names.EXECUTOR_FORMS),
}


def _help(flag: str, default: object = None) -> str:
    meaning = MEANINGS[flag]
    return meaning if default is None else f"{meaning} (default: {default})"


def size(text: str) -> int:
    """argparse type of ``--memory-budget``: bytes."""
    try:
        return parse_size(text)
    except ConfigError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def add_model(parser: argparse.ArgumentParser, *positionals: str) -> None:
    """The model(s) a command runs, with ``--revision``, ``--device`` and ``--dtype``."""
    for name in positionals or ("model",):
        parser.add_argument(name, help="model directory, hub id, or family member (zoo:MEMBER@STEP)")
    parser.add_argument("--revision", default=None, help=_help("--revision"))
    add_device(parser)


def add_device(parser: argparse.ArgumentParser, *, default: str | None = "cpu", dtype: str | None = "float32") -> None:
    parser.add_argument("--device", default=default, help=_help("--device", default))
    parser.add_argument("--dtype", default=dtype, choices=names.DTYPES, help=_help("--dtype", dtype))


def add_task(parser: argparse.ArgumentParser, *, prompt_keys: str = '{"prompt", "answer"}') -> None:
    """What the model is measured on: a synthetic task or a prompts file, and the seed that draws the examples."""
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--task", help=_help("--task"))
    group.add_argument("--prompts", metavar="FILE.jsonl", help=f"{MEANINGS['--prompts']}, lines {prompt_keys}")
    parser.add_argument("--n-examples", type=int, default=256, help=_help("--n-examples", 256))
    parser.add_argument("--seed", type=int, default=0, help=_help("--seed", 0))


def add_components(parser: argparse.ArgumentParser, *, default: str = "heads") -> None:
    parser.add_argument("--components", default=default, help=_help("--components", default))


def add_replacement(
    parser: argparse.ArgumentParser, *, choices: Sequence[str] = names.REPLACEMENTS, default: str = "mean"
) -> None:
    parser.add_argument("--replacement", default=default, choices=choices, help=_help("--replacement", default))


def add_memory_budget(parser: argparse.ArgumentParser, *, default: str = "1GB") -> None:
    parser.add_argument(
        "--memory-budget", type=size, default=size(default), metavar="SIZE", help=_help("--memory-budget", default)
    )


def add_output(
    parser: argparse.ArgumentParser, *, default: str | None = None, resume: bool = False, progress: bool = True
) -> None:
    """``--out DIR`` (required unless a default is said), ``--replace``, optionally ``--resume``, ``--no-progress``."""
    required = default is None
    parser.add_argument("--out", required=required, default=None, metavar="DIR", help=_help("--out", default))
    parser.add_argument("--replace", action="store_true", help=_help("--replace"))
    if resume:
        parser.add_argument("--resume", action="store_true", help=_help("--resume"))
    if progress:
        add_progress(parser)


def add_progress(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-progress", action="store_true", help=_help("--no-progress"))


def add_config(parser: argparse.ArgumentParser, *, file: bool = True, keys: str | None = None) -> None:
    """``--config FILE.toml`` (unless the file is a positional) and repeatable ``--set KEY=VALUE`` (``keys``: which)."""
    if file:
        parser.add_argument("--config", default=None, metavar="FILE.toml", help=_help("--config"))
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=_help("--set") + (f"; keys: {keys}" if keys else ""),
    )


def add_executor(parser: argparse.ArgumentParser, *, default: str | None, default_text: str) -> None:
    parser.add_argument("--executor", default=default, help=_help("--executor", default_text))
