"""Provenance recorded beside every result: package versions, git commit, host, time, device, dtype, seed."""

import datetime
import importlib.metadata
import platform
import subprocess
from pathlib import Path
from typing import Any

_PACKAGES = ("modlens", "torch", "transformer-lens", "transformers", "numpy", "pandas")


def _version(pkg: str) -> str | None:
    try:
        return importlib.metadata.version(pkg)
    except importlib.metadata.PackageNotFoundError:
        return None


def _git_commit() -> str | None:
    """The commit of the modlens checkout, when modlens runs from one (an editable install)."""
    root = Path(__file__).resolve().parent.parent
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    dirty = subprocess.run(
        ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
        timeout=5,
    ).stdout.strip()
    return out.stdout.strip() + ("+dirty" if dirty else "")


def provenance(**extra: Any) -> dict[str, Any]:
    """A JSON-ready dict describing where and with what a result was produced.

    Args:
        **extra: run-specific fields (seed, device, dtype, ...), stored as given (stringified if not JSON).
    """
    record: dict[str, Any] = {
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": {p: _version(p) for p in _PACKAGES},
        "git_commit": _git_commit(),
    }
    for key, value in extra.items():
        record[key] = value if isinstance(value, int | float | str | bool | type(None) | list | dict) else str(value)
    return record
