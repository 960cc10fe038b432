"""Figures of patching sweeps: the patched metric over layer x head, or over component x position."""

from collections.abc import Sequence

import pandas as pd
import plotly.graph_objects as go

from modlens.plots.labels import change_label, label, short_name
from modlens.plots.style import TEMPLATE, diverging_scale


def plot_patching_heatmap(
    df: pd.DataFrame, *, kind: str = "head", value: str = "patched", tokens: Sequence[str] | None = None
) -> go.Figure:
    """Heatmap of one direction's sites of one kind: layer x head when patched at every position at once,
    component x position (labelled with ``tokens`` when given) when patched position by position.

    Args:
        df: a frame from ``run_patching_sweep`` / ``run_attribution_patching_pairs`` (one direction).
        kind: ``"head"``, ``"attn"``, ``"mlp"``, ``"neuron"`` or ``"resid"``.
        value: the column to show: ``"patched"`` (the normalised metric, 0 = corrupted, 1 = clean) or ``"change"``.
        tokens: the prompt's tokens, one per position (per-position frames).

    Raises:
        ValueError: no rows of that kind, no such column, or more than one direction.
    """
    if value not in df.columns:
        raise ValueError(f"no column {value!r}; the frame has {', '.join(df.columns)}")
    rows = df[df["kind"] == kind]
    if rows.empty:
        raise ValueError(f"the frame has no {kind} rows")
    directions = rows["direction"].unique()
    if len(directions) != 1:
        raise ValueError(f"the frame mixes directions {', '.join(directions)}; plot one at a time")
    per_position = bool(rows["position"].notna().any())
    if per_position:
        index, columns, y_title, x_title = "component", "position", "component", "position"
    elif kind in ("head", "neuron"):
        index, columns, y_title, x_title = "layer", "index", "layer", kind
    else:
        index, columns, y_title, x_title = "layer", "kind", "layer", ""
    order = list(dict.fromkeys(rows[index]))
    grid = rows.pivot_table(index=index, columns=columns, values=value, aggfunc="first").reindex(order)
    labels = rows.pivot_table(index=index, columns=columns, values="site", aggfunc="first").reindex_like(grid)
    x = [str(c) for c in grid.columns]
    if per_position and tokens is not None:
        x = [f"{p}: {tokens[int(p)]}" for p in grid.columns]
    metric, direction = str(rows["metric"].iloc[0]), str(directions[0])
    z = grid.to_numpy(dtype=float)
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=x,
            y=[str(i) for i in grid.index],
            text=labels.to_numpy(),
            # centred at 0 for both values: 0 is the corrupted run (patched) or no change (change)
            **diverging_scale(z),
            colorbar={
                "title": {"text": label(metric) if value == "patched" else change_label(metric), "side": "right"}
            },
            hovertemplate="%{text}<br>" + value + " = %{z:.4g}<extra></extra>",
        )
    )
    fig.update_layout(
        template=TEMPLATE,
        title=f"{direction}: {short_name(metric)} with one {kind} patched"
        + (" at one position" if per_position else ""),
        xaxis={"type": "category", "title": {"text": x_title}},
        yaxis={"autorange": "reversed", "type": "category", "title": {"text": y_title, "standoff": 12}},
    )
    return fig
