"""One flag, one meaning: every subcommand's parser is read and compared flag by flag."""

import argparse
import subprocess
import sys
from collections import defaultdict

import pytest

from modlens.cli import build_parser
from modlens.cli.flags import MEANINGS, size
from modlens.cli.parsers import COMMANDS


def subparsers() -> dict[str, argparse.ArgumentParser]:
    (group,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(group.choices)


def options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {
        flag: action for action in parser._actions for flag in action.option_strings if flag not in ("-h", "--help")
    }


def test_every_command_is_listed() -> None:
    assert list(subparsers()) == list(COMMANDS)


def test_a_shared_flag_is_defined_once_and_means_the_same_everywhere() -> None:
    uses: dict[str, list[tuple[str, argparse.Action]]] = defaultdict(list)
    for command, parser in subparsers().items():
        for flag, action in options(parser).items():
            uses[flag].append((command, action))
    shared = {flag: seen for flag, seen in uses.items() if len(seen) > 1}
    assert shared, "no flag is shared: the test reads nothing"
    for flag, seen in shared.items():
        assert flag in MEANINGS, f"{flag} is used by {[c for c, _ in seen]} but not defined in cli/flags.py"
        for command, action in seen:
            assert action.help is not None and action.help.startswith(MEANINGS[flag]), (command, flag, action.help)
        # same destination, kind of action and value type: `--seed 3` is the same int in every command
        signature = {(a.dest, type(a).__name__, getattr(a.type, "__name__", None), a.metavar) for _, a in seen}
        assert len(signature) == 1, (flag, signature)


EXPECTED = {
    # every command that runs a model takes the device and dtype
    "--device": {"ablate", "patch", "drift", "mask"},
    "--dtype": {"ablate", "patch", "drift", "mask"},
    # every command that writes an output directory can replace it and hides its bars on request
    "--replace": {"study", "ablate", "patch", "drift", "mask", "sweep"},
    "--no-progress": {"study", "zoo", "ablate", "patch", "drift", "mask", "sweep"},
    "--memory-budget": {"ablate", "patch"},
    "--replacement": {"ablate", "mask"},
    "--seed": {"ablate", "drift", "mask"},
}


@pytest.mark.parametrize("flag", sorted(EXPECTED))
def test_the_flag_is_where_it_is_needed(flag: str) -> None:
    have = {command for command, parser in subparsers().items() if flag in options(parser)}
    assert have == EXPECTED[flag]


@pytest.mark.parametrize("retired", ["--overwrite", "--method", "--ablation", "--n-boot"])
def test_retired_names_are_gone(retired: str) -> None:
    """Each meant one thing in one command and another elsewhere (or duplicated a flag): none is accepted now."""
    assert all(retired not in options(parser) for parser in subparsers().values())


@pytest.mark.parametrize(("text", "expected"), [("512MB", 512 * 2**20), ("2GB", 2 * 2**30), ("1024", 2**30)])
def test_memory_budget_takes_units(text: str, expected: int) -> None:
    assert size(text) == expected
    args = build_parser().parse_args(["ablate", "m", "--task", "reverse", "--out", "o", "--memory-budget", text])
    assert args.memory_budget == expected


@pytest.mark.parametrize("text", ["lots", "0MB", "-5", "3TB"])
def test_a_bad_memory_budget_is_one_clear_line(text: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["patch", "m", "--prompts", "p.jsonl", "--out", "o", "--memory-budget", text])
    assert exit_info.value.code == 2
    assert "such as 512MB or 2GB" in capsys.readouterr().err


def test_version() -> None:
    out = subprocess.run([sys.executable, "-m", "modlens.cli", "--version"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.startswith("modlens ")
