"""Figures of ablation sweeps: heatmaps of the metric change over layer x head (or neuron, or layer part)."""

import pandas as pd
import plotly.graph_objects as go

from modlens.plots.style import DIVERGING, TEMPLATE

_X_TITLE = {"head": "head", "neuron": "neuron", "layer": "layer part"}


def plot_ablation_heatmap(
    df: pd.DataFrame, *, kind: str = "head", value: str = "change", title: str | None = None
) -> go.Figure:
    """Heatmap of one value of a sweep frame, layers down and heads (or neurons, or attn/mlp) across.

    Args:
        df: a frame from ``run_ablation_sweep`` / ``run_attribution_patching``.
        kind: ``"head"`` (layer x head), ``"neuron"`` (layer x neuron) or ``"layer"`` (layer x attn/mlp).
        value: the column to show, usually ``"change"``.
        title: figure title; a default names the metric and method.

    Raises:
        ValueError: the frame has no rows of that kind, or no such column.
    """
    if value not in df.columns:
        raise ValueError(f"no column {value!r}; the frame has {', '.join(df.columns)}")
    if kind == "layer":
        rows = df[df["kind"].isin(["attn", "mlp"])]
        columns = "kind"
    else:
        rows = df[df["kind"] == kind]
        columns = "index"
    if rows.empty:
        raise ValueError(f"the frame has no {kind} rows")
    grid = rows.pivot_table(index="layer", columns=columns, values=value, aggfunc="first").sort_index()
    labels = rows.pivot_table(index="layer", columns=columns, values="component", aggfunc="first").reindex_like(grid)
    metric = str(rows["metric"].iloc[0]) if "metric" in rows else "metric"
    method = str(rows["method"].iloc[0]) if "method" in rows else ""
    limit = float(grid.abs().max().max()) or 1.0
    fig = go.Figure(
        go.Heatmap(
            z=grid.to_numpy(dtype=float),
            x=[str(c) for c in grid.columns],
            y=[int(i) for i in grid.index],
            text=labels.to_numpy(),
            colorscale=DIVERGING,
            reversescale=True,
            zmid=0.0,
            zmin=-limit,
            zmax=limit,
            colorbar={"title": {"text": f"Δ {metric}"}},
            hovertemplate="%{text}<br>Δ " + metric + " = %{z:.4g}<extra></extra>",
        )
    )
    fig.update_layout(
        template=TEMPLATE,
        title=title or f"{method} ablation: change in {metric}",
        xaxis_title=_X_TITLE.get(kind, kind),
        yaxis_title="layer",
        xaxis={"type": "category"},  # head / neuron indices and attn/mlp are labels, not a number line
        yaxis={"autorange": "reversed", "dtick": 1},
    )
    return fig
