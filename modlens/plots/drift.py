"""Drift figures: layer × matrix heatmap, drift by depth across models, CKA by layer, spectral split per layer."""

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from modlens.errors import ModlensError
from modlens.plots.labels import label, short_name
from modlens.plots.style import LOWER_SHADE, PALETTE, TEMPLATE, UPPER_SHADE, value_scale

MATRIX_ORDER = ("W_Q", "W_K", "W_V", "W_O", "W_in", "W_gate", "W_out")
DEPTH_AXIS = "relative depth (0 = first layer, 1 = last; halves split at 0.5)"
LAYER_AXIS = "layer"


def plot_weight_drift_heatmap(df: pd.DataFrame, *, value: str = "rel_change", title: str | None = None) -> go.Figure:
    """Heatmap of one weight-drift measure, layers across and matrices down (whole-matrix rows only).

    Args:
        df: ``run_weight_drift`` output.
        value: the column shown (``rel_change``, ``cosine``, ``sv_share``, ...).
        title: figure title.
    """
    _require(df, ("layer", "matrix", "head", value))
    rows = df[df["layer"].notna() & df["head"].isna()]
    grid = rows.pivot_table(index="matrix", columns="layer", values=value, aggfunc="mean")
    grid = grid.reindex([m for m in MATRIX_ORDER if m in grid.index] + [m for m in grid.index if m not in MATRIX_ORDER])
    z = grid.to_numpy()
    layers = [int(c) for c in grid.columns]
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=layers,
            y=list(grid.index),
            **value_scale(z),  # anchored at 0 (centred at 0 if any value is negative)
            colorbar={"title": {"text": label(value), "side": "right"}},
            hovertemplate="layer %{x}<br>%{y}<br>" + value + " %{z:.4g}<extra></extra>",
        )
    )
    _mark_layer_halves(fig, max(layers) + 1 if layers else 1, shade=False)
    fig.update_layout(
        template=TEMPLATE,
        title=title or f"{short_name(value).capitalize()} per layer and matrix",
        xaxis_title=LAYER_AXIS,
        yaxis_title="weight matrix",
        xaxis={"dtick": 1},
        yaxis={"autorange": "reversed"},
    )
    return fig


def plot_drift_by_depth(
    df: pd.DataFrame, *, value: str = "drift", model: str = "model", title: str | None = None
) -> go.Figure:
    """Drift against relative depth (0 = first layer, 1 = last), one line per model, halves shaded.

    Args:
        df: one row per model and layer with ``layer``, the ``value`` column and (optionally) a ``model``
            column; several rows of one model and layer are averaged. Depth is ``layer / (n_layers − 1)``
            per model, from that model's largest layer index.
        value: the drift column plotted.
        model: the column naming the model (one line each); absent means a single model.
        title: figure title.
    """
    _require(df, ("layer", value))
    frame = df.assign(**{model: df.get(model, "model")})
    frame = frame[frame["layer"].notna()]
    fig = go.Figure()
    for half, x0, x1, shade in (("lower", 0.0, 0.5, LOWER_SHADE), ("upper", 0.5, 1.0, UPPER_SHADE)):
        fig.add_vrect(
            x0=x0,
            x1=x1,
            fillcolor=shade,
            line_width=0,
            layer="below",
            annotation_text=f"{half} half",
            annotation_position="top left" if half == "lower" else "top right",
        )
    for i, (name, part) in enumerate(frame.groupby(model, sort=False)):
        per_layer = part.groupby(part["layer"].astype(int))[value].mean()
        depth = per_layer.index.to_numpy() / max(int(per_layer.index.max()), 1)
        fig.add_trace(
            go.Scatter(
                x=depth,
                y=per_layer.to_numpy(),
                mode="lines+markers",
                name=str(name),
                line={"color": PALETTE[i % len(PALETTE)]},
                customdata=per_layer.index.to_numpy(),
                hovertemplate="layer %{customdata}<br>depth %{x:.2f}<br>" + value + " %{y:.4g}<extra></extra>",
            )
        )
    fig.add_vline(x=0.5, line_dash="dot", line_color="#888")
    fig.update_layout(
        template=TEMPLATE,
        title=title or f"{short_name(value).capitalize()} by relative depth",
        xaxis_title=DEPTH_AXIS,
        yaxis_title=label(value),
        xaxis={"range": [-0.03, 1.03]},
    )
    return fig


def plot_cka_by_layer(
    df: pd.DataFrame, *, measures: tuple[str, ...] | None = None, title: str | None = None
) -> go.Figure:
    """CKA (and cosine) between base and tuned activations per layer, one panel per hook.

    Args:
        df: ``run_activation_drift`` output.
        measures: similarity columns drawn (default: every one of linear_cka, debiased_cka, cosine present).
        title: figure title.
    """
    _require(df, ("layer", "hook"))
    chosen = measures or tuple(m for m in ("linear_cka", "debiased_cka", "cosine") if m in df)
    _require(df, chosen)
    hooks = list(dict.fromkeys(df["hook"]))
    fig = make_subplots(rows=1, cols=len(hooks), subplot_titles=[label(h) for h in hooks], shared_yaxes=True)
    n_layers = int(df["layer"].max()) + 1
    for col, hook in enumerate(hooks, start=1):
        part = df[df["hook"] == hook].sort_values("layer")
        for i, measure in enumerate(chosen):
            fig.add_trace(
                go.Scatter(
                    x=part["layer"],
                    y=part[measure],
                    mode="lines+markers",
                    name=short_name(measure),
                    legendgroup=measure,
                    showlegend=col == 1,
                    line={"color": PALETTE[i % len(PALETTE)]},
                    hovertemplate=f"{hook}<br>layer %{{x}}<br>{measure} %{{y:.4f}}<extra></extra>",
                ),
                row=1,
                col=col,
            )
        fig.update_xaxes(title_text=LAYER_AXIS, row=1, col=col, dtick=1)
        _mark_layer_halves(fig, n_layers, row=1, col=col)
    fig.update_yaxes(title_text="similarity, base vs tuned (1 = unchanged)", row=1, col=1)
    fig.update_layout(template=TEMPLATE, title=title or "Activation similarity, base vs tuned, by layer")
    return fig


def plot_spectral_split(df: pd.DataFrame, *, title: str | None = None) -> go.Figure:
    """Per layer: the share of weight change that is singular values vs rotation (top), and the mean
    principal angles of the top-k singular subspaces (bottom), averaged over the layer's matrices.

    Args:
        df: ``run_weight_drift`` output.
        title: figure title.
    """
    _require(df, ("layer", "head", "sv_share", "angle_in", "angle_out"))
    rows = df[df["layer"].notna() & df["head"].isna()]
    per_layer = rows.groupby(rows["layer"].astype(int))[["sv_share", "angle_in", "angle_out"]].mean()
    layers = per_layer.index.to_numpy()
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08)
    fig.add_trace(go.Bar(x=layers, y=per_layer["sv_share"], name="singular values", marker_color=PALETTE[0]), 1, 1)
    fig.add_trace(
        go.Bar(x=layers, y=1 - per_layer["sv_share"], name="rotation", marker_color=PALETTE[1]),
        row=1,
        col=1,
    )
    for i, (column, name) in enumerate((("angle_in", "input subspace"), ("angle_out", "output subspace"))):
        fig.add_trace(
            go.Scatter(x=layers, y=per_layer[column], mode="lines+markers", name=name, line={"color": PALETTE[2 + i]}),
            row=2,
            col=1,
        )
    fig.update_yaxes(title_text="share of ‖ΔW‖² (fraction)", range=[0, 1], row=1, col=1)
    fig.update_yaxes(title_text="mean principal angle (°)", row=2, col=1)
    fig.update_xaxes(title_text=LAYER_AXIS, dtick=1, row=2, col=1)
    for row in (1, 2):
        _mark_layer_halves(fig, int(layers.max()) + 1, row=row, col=1, shade=False, annotate=row == 1)
    fig.update_layout(template=TEMPLATE, barmode="stack", title=title or "Spectral split of the weight change")
    return fig


def _mark_layer_halves(
    fig: go.Figure,
    n_layers: int,
    *,
    row: int | None = None,
    col: int | None = None,
    shade: bool = True,
    annotate: bool = True,
) -> None:
    """Marks the lower and upper half of the layers on a layer-index axis: a dotted line at depth 0.5 (layer
    (n − 1) / 2: through the middle layer when the count is odd, which then counts half to each, as in
    ``modlens.drift.depth_summary``), the halves shaded (not under a heatmap, which would hide it) and named."""
    middle = (n_layers - 1) / 2
    where = {"row": row, "col": col} if row is not None else {}
    if shade:
        fig.add_vrect(x0=-0.5, x1=middle, fillcolor=LOWER_SHADE, line_width=0, layer="below", **where)
        fig.add_vrect(x0=middle, x1=n_layers - 0.5, fillcolor=UPPER_SHADE, line_width=0, layer="below", **where)
    fig.add_vline(x=middle, line_dash="dot", line_color="#555", line_width=1.5, **where)
    if annotate:
        # inside the top of shaded panels (subplot titles sit just above them); above a heatmap, which is opaque
        inside = shade
        for text, anchor in (("lower half ", "right"), (" upper half", "left")):
            fig.add_annotation(
                x=middle,
                y=0.995 if inside else 1,
                yref="y domain" if row is None else f"{_axis(fig, row, col, 'y')} domain",
                xref="x" if row is None else _axis(fig, row, col, "x"),
                text=text,
                showarrow=False,
                xanchor=anchor,
                yanchor="top" if inside else "bottom",
                font={"size": 11, "color": "#555"},
            )


def _axis(fig: go.Figure, row: int, col: int | None, letter: str) -> str:
    """The axis reference (``x``, ``x2``, ...) of one subplot."""
    subplot = fig.get_subplot(row, col or 1)
    anchor = subplot.yaxis.anchor if letter == "x" else subplot.xaxis.anchor
    return str(anchor)


def _require(df: pd.DataFrame, columns: tuple[str, ...]) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ModlensError(f"the frame lacks column(s) {', '.join(missing)}; it has {', '.join(map(str, df.columns))}")
    if df.empty:
        raise ModlensError("nothing to plot: the frame is empty")
