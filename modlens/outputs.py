"""Output directories of CLI runs: tables, figures, the resolved config and provenance, written atomically."""

import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from modlens.atomic import atomic_directory
from modlens.errors import ModlensError
from modlens.provenance import provenance

CONFIG_FILE = "config.json"


def check_out_dir(path: "str | os.PathLike[str]", *, replace: bool = False) -> Path:
    """Validates an output directory before any work starts: it must be new, empty, or ``replace``."""
    out = Path(path).expanduser()
    if out.exists() and not out.is_dir():
        raise ModlensError(f"output path {str(out)!r} is a file; give a directory")
    if out.is_dir() and any(out.iterdir()) and not replace:
        raise ModlensError(f"output directory {str(out)!r} is not empty; choose another or pass --replace")
    return out


def write_outputs(
    path: "str | os.PathLike[str]",
    *,
    config: Mapping[str, Any],
    tables: Mapping[str, pd.DataFrame] = {},
    writers: Mapping[str, Callable[[Path], Any]] = {},
    replace: bool = False,
    **record: Any,
) -> Path:
    """Writes a run's results into ``path`` so that it appears complete or not at all.

    Args:
        path: the output directory.
        config: the resolved configuration; saved with provenance as ``config.json``.
        tables: DataFrames saved as ``<name>.csv``.
        writers: ``{filename: fn}``; each ``fn(target_path)`` writes one file (figures, HTML pages).
        replace: replace a non-empty directory.
        **record: extra provenance fields (seed, device, ...).
    """
    out = check_out_dir(path, replace=replace)
    with atomic_directory(out, replace=True) as staging:
        meta = {"config": dict(config), "provenance": provenance(**record)}
        (staging / CONFIG_FILE).write_text(json.dumps(meta, indent=2, default=str))
        for name, frame in tables.items():
            frame.to_csv(staging / f"{name}.csv", index=False)
        for filename, write in writers.items():
            write(staging / filename)
    return out
