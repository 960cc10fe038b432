"""Figures of learned masks: kept fraction per layer, and modularity scores per subroutine."""

import pandas as pd
import plotly.graph_objects as go

from modlens.plots.style import PALETTE, TEMPLATE


def plot_mask_density(df: pd.DataFrame, *, title: str | None = None) -> go.Figure:
    """Grouped bars of the kept fraction per layer, one trace per unit group (and per mask if named).

    Args:
        df: ``Mask.density_by_layer()`` (columns ``layer, group, density``), optionally several masks
            concatenated with a ``mask`` column naming each.
        title: figure title.
    """
    frame = df.copy()
    if "mask" not in frame.columns:
        frame["mask"] = ""
    fig = go.Figure()
    keys = list(frame.groupby(["mask", "group"], sort=False).groups)
    for i, (mask, group) in enumerate(keys):
        part = frame[(frame["mask"] == mask) & (frame["group"] == group)].sort_values("layer")
        name = f"{mask} {group}".strip()
        fig.add_trace(go.Bar(x=part["layer"], y=part["density"], name=name, marker_color=PALETTE[i % len(PALETTE)]))
    fig.update_layout(
        template=TEMPLATE,
        barmode="group",
        title=title or "Mask density per layer",
        xaxis_title="layer",
        yaxis_title="kept fraction of units",
        yaxis_range=[0, 1.05],
        legend_title="units",
    )
    fig.update_xaxes(dtick=1)
    return fig


def plot_modularity_scores(df: pd.DataFrame, *, title: str | None = None) -> go.Figure:
    """Subnetwork and ablation scores per subroutine, one point per mask seed (``run_modularity`` output)."""
    scores = df[df["metric"].isin(["subnetwork_score", "ablation_score"])]
    fig = go.Figure()
    for i, metric in enumerate(["subnetwork_score", "ablation_score"]):
        part = scores[scores["metric"] == metric]
        fig.add_trace(
            go.Box(
                x=part["subroutine"],
                y=part["value"],
                name=metric.replace("_", " "),
                boxpoints="all",
                marker_color=PALETTE[i],
            )
        )
    fig.add_hline(y=0, line_color="#444", line_width=1)
    if not scores["value"].notna().any():  # an empty plot would look like a drawing error
        fig.add_annotation(
            text="no finite score: masks that fail the faithfulness gate are not scored",
            x=0.5,
            y=0.5,
            xref="paper",
            yref="paper",
            showarrow=False,
        )
    fig.update_layout(
        template=TEMPLATE,
        boxmode="group",
        title=title or "Specialization of learned masks (Lepori scores)",
        xaxis_title="subroutine",
        yaxis_title="score (accuracy difference, floored at chance)",
    )
    return fig
