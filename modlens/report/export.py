"""Writing figures to disk: interactive HTML here; static formats for papers live beside it."""

import os
from pathlib import Path

import plotly.graph_objects as go


def save_figure_html(fig: go.Figure, path: "str | os.PathLike[str]", *, include_plotlyjs: bool | str = True) -> Path:
    """Writes one self-contained interactive HTML file (plotly.js embedded unless told otherwise)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fig.write_html(target, include_plotlyjs=include_plotlyjs, full_html=True)
    return target
