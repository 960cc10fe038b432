"""Where the family lives on disk: a user cache directory, never the repository."""

import os
from pathlib import Path

CACHE_ENV = "MODLENS_CACHE"


def cache_root(override: "str | os.PathLike[str] | None" = None) -> Path:
    """The cache directory: ``override``, else ``$MODLENS_CACHE``, else ``$XDG_CACHE_HOME/modlens``, else
    ``~/.cache/modlens``."""
    if override is not None:
        return Path(override).expanduser()
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "modlens"


def checkpoint_dirname(step: int) -> str:
    return f"step{step:06d}"
