"""Drift figures: layer × matrix heatmap, drift by depth across models, CKA by layer, spectral split per layer."""

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from modlens.errors import ModlensError
from modlens.plots.style import PALETTE, SEQUENTIAL, TEMPLATE

MATRIX_ORDER = ("W_Q", "W_K", "W_V", "W_O", "W_in", "W_gate", "W_out")
_HALF_SHADE = {"lower": "rgba(0,114,178,0.08)", "upper": "rgba(213,94,0,0.08)"}


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
    fig = go.Figure(
        go.Heatmap(
            z=grid.to_numpy(),
            x=[int(c) for c in grid.columns],
            y=list(grid.index),
            colorscale=SEQUENTIAL,
            colorbar={"title": {"text": value}},
            hovertemplate="layer %{x}<br>%{y}<br>" + value + " %{z:.4g}<extra></extra>",
        )
    )
    fig.update_layout(
        template=TEMPLATE,
        title=title or f"Weight drift ({value}) per layer and matrix",
        xaxis_title="layer",
        yaxis_title="matrix",
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
    for half, (x0, x1) in {"lower": (0.0, 0.5), "upper": (0.5, 1.0)}.items():
        fig.add_vrect(
            x0=x0,
            x1=x1,
            fillcolor=_HALF_SHADE[half],
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
        title=title or f"Drift by depth ({value})",
        xaxis_title="relative depth (0 = first layer, 1 = last)",
        yaxis_title=value,
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
    fig = make_subplots(rows=1, cols=len(hooks), subplot_titles=hooks, shared_yaxes=True)
    for col, hook in enumerate(hooks, start=1):
        part = df[df["hook"] == hook].sort_values("layer")
        for i, measure in enumerate(chosen):
            fig.add_trace(
                go.Scatter(
                    x=part["layer"],
                    y=part[measure],
                    mode="lines+markers",
                    name=measure,
                    legendgroup=measure,
                    showlegend=col == 1,
                    line={"color": PALETTE[i % len(PALETTE)]},
                    hovertemplate=f"{hook}<br>layer %{{x}}<br>{measure} %{{y:.4f}}<extra></extra>",
                ),
                row=1,
                col=col,
            )
        fig.update_xaxes(title_text="layer", row=1, col=col, dtick=1)
    fig.update_yaxes(title_text="similarity (1 = unchanged)", row=1, col=1)
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
    for i, (column, label) in enumerate((("angle_in", "input subspace"), ("angle_out", "output subspace"))):
        fig.add_trace(
            go.Scatter(x=layers, y=per_layer[column], mode="lines+markers", name=label, line={"color": PALETTE[2 + i]}),
            row=2,
            col=1,
        )
    fig.update_yaxes(title_text="share of ‖ΔW‖²", range=[0, 1], row=1, col=1)
    fig.update_yaxes(title_text="mean principal angle (°)", row=2, col=1)
    fig.update_xaxes(title_text="layer", dtick=1, row=2, col=1)
    fig.update_layout(template=TEMPLATE, barmode="stack", title=title or "Spectral split of the weight change")
    return fig


def _require(df: pd.DataFrame, columns: tuple[str, ...]) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ModlensError(f"the frame lacks column(s) {', '.join(missing)}; it has {', '.join(map(str, df.columns))}")
    if df.empty:
        raise ModlensError("nothing to plot: the frame is empty")
