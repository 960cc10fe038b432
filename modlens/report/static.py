"""Static figure export (PNG, SVG, PDF) through kaleido and a locally installed Chrome or Chromium."""

import contextlib
import logging
import os
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import plotly.graph_objects as go

from modlens.errors import ModlensError
from modlens.report.export import save_figure_html

STATIC_FORMATS = ("png", "svg", "pdf")
BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
BROWSER_ENV = "MODLENS_CHROMIUM"


def find_chromium(path: "str | os.PathLike[str] | None" = None) -> Path | None:
    """The Chrome/Chromium executable to render with: ``path`` if given, else ``$MODLENS_CHROMIUM``, else the
    first of ``chromium``, ``chromium-browser``, ``google-chrome``, ... on ``PATH``; ``None`` if there is none.

    Raises:
        ModlensError: an explicitly given path (argument or environment) is not an executable file.
    """
    explicit = path if path is not None else os.environ.get(BROWSER_ENV)
    if explicit:
        candidate = Path(explicit).expanduser()
        if not (candidate.is_file() and os.access(candidate, os.X_OK)):
            raise ModlensError(f"Chromium path {str(candidate)!r} is not an executable file")
        return candidate
    for name in BROWSER_NAMES:
        found = shutil.which(name)
        if found:
            return Path(found)
    return None


def save_figure(
    fig: go.Figure,
    path: "str | os.PathLike[str]",
    *,
    chromium: "str | os.PathLike[str] | None" = None,
    scale: float = 2.0,
) -> Path:
    """Writes a figure, choosing the format from the suffix: ``.html`` (interactive, self-contained), or
    ``.png`` / ``.svg`` / ``.pdf`` for papers, rendered by kaleido in a local Chromium (no network needed).

    Args:
        fig: the figure.
        path: target file; its suffix picks the format.
        chromium: the browser executable for static formats (default: see ``find_chromium``).
        scale: pixel density of PNG output.

    Raises:
        ModlensError: unknown suffix, kaleido missing, or no Chromium found (the message says how to fix it).
    """
    return save_figures([(fig, path)], chromium=chromium, scale=scale)[0]


def save_figures(
    items: "Sequence[tuple[go.Figure, str | os.PathLike[str]]]",
    *,
    chromium: "str | os.PathLike[str] | None" = None,
    scale: float = 2.0,
) -> list[Path]:
    """Writes several figures like ``save_figure``; the static ones share one browser start (about 3 s each
    when started per file).

    Raises:
        ModlensError: as ``save_figure``, or the browser failed to render (HTML files are written first);
            every suffix is checked before anything is written.
    """
    entries = [(fig, Path(path).expanduser()) for fig, path in items]
    for _, target in entries:
        if _suffix(target) not in (*STATIC_FORMATS, "html", "htm"):
            raise ModlensError(f"cannot save a figure as {target.name!r}; use .html, .png, .svg or .pdf")
    for fig, target in entries:
        if _suffix(target) not in STATIC_FORMATS:
            save_figure_html(fig, target)  # first: a failed static export still leaves the interactive files
    static = [
        {"fig": fig, "path": str(target), "opts": {"format": _suffix(target), "scale": scale}}
        for fig, target in entries
        if _suffix(target) in STATIC_FORMATS
    ]
    if static:
        kaleido, browser = _static_renderer(chromium)
        for spec in static:
            Path(spec["path"]).parent.mkdir(parents=True, exist_ok=True)
        # mathjax=False: kaleido would otherwise fetch MathJax from a CDN, which offline machines cannot reach.
        try:
            with _quiet_browser_pipe():
                kaleido.write_fig_from_object_sync(
                    static, kopts={"path": str(browser), "mathjax": False}, cancel_on_error=True
                )
        except Exception as err:  # the browser crashed, timed out or could not render: not a modlens bug
            raise ModlensError(f"static figure export with {browser} failed ({type(err).__name__}: {err})") from err
    return [target for _, target in entries]


@contextlib.contextmanager
def _quiet_browser_pipe() -> Iterator[None]:
    """Hides choreographer's log of browser messages it could not parse and skips (it prints a traceback for
    each, though the export goes on and succeeds); real failures still raise."""
    pipe = logging.getLogger("choreographer.channels.pipe")
    level = pipe.level
    pipe.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        pipe.setLevel(level)


def _suffix(path: Path) -> str:
    return path.suffix.lower().lstrip(".")


def _static_renderer(chromium: "str | os.PathLike[str] | None") -> tuple[Any, Path]:
    """kaleido and the browser it will drive, or the error that says what to install."""
    browser = find_chromium(chromium)
    if browser is None:
        raise ModlensError(
            "static figure export needs Chrome or Chromium and none was found "
            f"(looked for {', '.join(BROWSER_NAMES)} on PATH and ${BROWSER_ENV}); install one "
            "(e.g. apt-get install chromium) or pass its path, or save as .html"
        )
    try:
        import kaleido
    except ImportError as err:
        raise ModlensError("static figure export needs the kaleido package: pip install 'kaleido>=1'") from err
    return kaleido, browser
