"""One self-contained HTML page holding several figures (plotly.js embedded once)."""

import html
import os
from collections.abc import Mapping
from pathlib import Path

import plotly.graph_objects as go


def figures_page(figures: Mapping[str, go.Figure], *, title: str, notes: str = "") -> str:
    """The HTML of a page with a heading per figure, in order; works offline (plotly.js inlined once)."""
    parts = []
    for i, (heading, fig) in enumerate(figures.items()):
        body = fig.to_html(full_html=False, include_plotlyjs=i == 0)
        parts.append(f"<section><h2>{html.escape(heading)}</h2>{body}</section>")
    note = f"<p>{html.escape(notes)}</p>" if notes else ""
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title>"
        "<style>body{font-family:Helvetica,Arial,sans-serif;max-width:1100px;margin:2em auto}</style>"
        f"</head><body><h1>{html.escape(title)}</h1>{note}{''.join(parts)}</body></html>"
    )


def save_figures_page(
    figures: Mapping[str, go.Figure], path: "str | os.PathLike[str]", *, title: str, notes: str = ""
) -> Path:
    """Writes ``figures_page`` to ``path``."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(figures_page(figures, title=title, notes=notes), encoding="utf-8")
    return target
