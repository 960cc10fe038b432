"""Figures of ablation sweeps: heatmaps of the metric change over layer x head (or neuron, or layer part)."""

import pandas as pd
import plotly.graph_objects as go

from modlens.plots.labels import change_label, short_name
from modlens.plots.style import TEMPLATE, diverging_scale

_X_TITLE = {"head": "head", "neuron": "neuron", "layer": "layer part"}


def plot_ablation_heatmap(
    df: pd.DataFrame, *, kind: str = "head", value: str = "change", title: str | None = None
) -> go.Figure:
    """Heatmap of one value of a sweep frame, layers down and heads (or neurons, or attn/mlp) across.

    Args:
        df: a frame from ``run_ablation_sweep`` / ``run_attribution_patching``.
        kind: ``"head"`` (layer x head), ``"neuron"`` (layer x neuron) or ``"layer"`` (layer x attn/mlp).
        value: the column to show, usually ``"change"``.
        title: figure title; a default names the metric and the replacement.

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
    replacement = str(rows["replacement"].iloc[0]) if "replacement" in rows else ""
    z = grid.to_numpy(dtype=float)
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=[str(c) for c in grid.columns],
            y=[int(i) for i in grid.index],
            text=labels.to_numpy(),
            # signed: centred at 0, red where the metric rose (for a loss: where the component was needed)
            **diverging_scale(z, reverse=True),
            colorbar={"title": {"text": change_label(metric), "side": "right"}},
            hovertemplate="%{text}<br>Δ " + metric + " = %{z:.4g}<extra></extra>",
        )
    )
    fig.update_layout(
        template=TEMPLATE,
        title=title or f"{replacement} ablation: change in {short_name(metric)}".strip(),
        xaxis_title=_X_TITLE.get(kind, kind),
        yaxis_title="layer",
        xaxis={"type": "category"},  # head / neuron indices and attn/mlp are labels, not a number line
        yaxis={"autorange": "reversed", "dtick": 1},
    )
    return fig
