"""Writing files and directories so that a reader sees them complete or not at all: stage beside, then rename.

Staging names start with ``.`` and contain ``.tmp`` (``STAGING_GLOB``), so leftovers of a killed writer are
recognisable and nothing that lists a directory's visible entries picks them up.
"""

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

STAGING_GLOB = ".*.tmp*"
"""Matches every staging file and directory this module creates (for cleaning up after a killed writer)."""


def _staging_prefix(target: Path) -> str:
    return f".{target.name}.tmp"


@contextmanager
def atomic_directory(path: "str | os.PathLike[str]", *, replace: bool = False) -> Iterator[Path]:
    """Yields an empty staging directory beside ``path``; renamed to ``path`` when the block ends without error.

    On an error (or interrupt) the staging directory is removed and ``path`` is untouched.

    Args:
        path: the directory to create.
        replace: delete an existing ``path`` just before the rename; otherwise an existing one is an error
            (``FileExistsError``) at the rename.
    """
    target = Path(path).expanduser()
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=_staging_prefix(target), dir=target.parent))
    try:
        yield staging
        if target.exists():
            if not replace:
                raise FileExistsError(f"{str(target)!r} appeared while it was being written")
            shutil.rmtree(target)
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _fsync_dir(target.parent)


def write_text_atomic(path: "str | os.PathLike[str]", text: str) -> Path:
    """Writes ``text`` (UTF-8) to ``path`` through a synced temporary file renamed into place."""
    return write_bytes_atomic(path, text.encode("utf-8"))


def write_bytes_atomic(path: "str | os.PathLike[str]", data: bytes) -> Path:
    """Writes ``data`` to ``path`` through a synced temporary file renamed into place."""
    target = Path(path).expanduser()
    fd, tmp = tempfile.mkstemp(prefix=_staging_prefix(target), dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(target.parent)
    return target


def write_json_atomic(path: "str | os.PathLike[str]", data: Any, *, indent: int = 1) -> Path:
    """``data`` as JSON (NaN allowed, non-ASCII kept) written with ``write_text_atomic``."""
    return write_text_atomic(path, json.dumps(data, indent=indent, ensure_ascii=False, allow_nan=True))


def remove_staging(directory: "str | os.PathLike[str]", name: str = "*") -> None:
    """Removes the staging leftovers of killed writers of ``name`` (a glob; default: any) in ``directory``.

    Only call this where no other writer can be active (e.g. under a lock, or when opening a store).
    """
    for stale in Path(directory).glob(f".{name}.tmp*"):
        if stale.is_dir() and not stale.is_symlink():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.unlink(missing_ok=True)


def _fsync_dir(path: Path) -> None:
    """Makes a rename durable (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
