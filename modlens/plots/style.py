"""The one plotly template, palette and colour scales modlens figures use, passed explicitly (never set
globally). Every builder in ``modlens.plots`` styles its figure with ``TEMPLATE`` and colours its heatmaps with
``sequential_scale`` (values ≥ 0, anchored at 0) or ``diverging_scale`` (signed values, centred at 0)."""

from typing import Any

import numpy as np
import plotly.graph_objects as go
from numpy.typing import ArrayLike

# Okabe-Ito: distinguishable under the common colour-vision deficiencies.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
SEQUENTIAL = "Viridis"  # perceptually uniform, colour-blind safe
DIVERGING = "RdBu"  # red-blue: readable under red-green colour-vision deficiency, white at the centre
LOWER_SHADE = "rgba(0,114,178,0.08)"  # the lower half of the layers (blue of the palette)
UPPER_SHADE = "rgba(213,94,0,0.08)"  # the upper half (vermillion)

TEMPLATE = go.layout.Template(
    layout=go.Layout(
        font={"family": "Helvetica, Arial, sans-serif", "size": 13},
        colorway=list(PALETTE),
        colorscale={"sequential": SEQUENTIAL, "diverging": DIVERGING},
        plot_bgcolor="white",
        paper_bgcolor="white",
        xaxis={"showgrid": True, "gridcolor": "#e5e5e5", "zeroline": False, "linecolor": "#444"},
        yaxis={"showgrid": True, "gridcolor": "#e5e5e5", "zeroline": False, "linecolor": "#444"},
        margin={"l": 70, "r": 30, "t": 60, "b": 60},
    )
)


def sequential_scale(values: ArrayLike) -> dict[str, Any]:
    """Heatmap colour settings for non-negative values: the sequential scale from 0 to the largest value, so
    equal colours mean equal amounts in every figure (1 when every value is 0 or missing)."""
    top = float(np.nanmax(np.asarray(values, dtype=float), initial=0.0))
    return {"colorscale": SEQUENTIAL, "zmin": 0.0, "zmax": top if top > 0 else 1.0}


def diverging_scale(values: ArrayLike, *, reverse: bool = False) -> dict[str, Any]:
    """Heatmap colour settings for signed values: the diverging scale centred at 0 (white), symmetric, so a
    value and its negative get opposite colours of the same strength. ``reverse`` puts red on the positive side."""
    limit = float(np.nanmax(np.abs(np.asarray(values, dtype=float)), initial=0.0))
    limit = limit if limit > 0 else 1.0
    return {"colorscale": DIVERGING, "reversescale": reverse, "zmid": 0.0, "zmin": -limit, "zmax": limit}


def value_scale(values: ArrayLike) -> dict[str, Any]:
    """``sequential_scale`` when no value is negative, else ``diverging_scale``."""
    array = np.asarray(values, dtype=float)
    return diverging_scale(array) if np.nanmin(array, initial=0.0) < 0 else sequential_scale(array)
