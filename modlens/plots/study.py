"""Study figures: each metric against measured pretraining quality, small multiples, and a forest plot of
the within-group ρ."""

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from modlens.analysis.correlation import WITHIN
from modlens.analysis.frame import CONTROL_STEP, GROUP_COLUMNS
from modlens.analysis.metrics import METRICS_INFO, metric_info
from modlens.errors import ModlensError
from modlens.plots.labels import group_label
from modlens.plots.style import PALETTE, TEMPLATE

LOSS_AXIS = "held-out pretraining loss (nats/token, log scale); better pretraining →"
PANEL_LOSS_AXIS = "pretraining loss (nats/token, log), better →"
# Loss on a log axis: random init (~3 nats) and well-pretrained checkpoints (~0.01) both stay readable, and the
# analysis is rank-based (Spearman), so a monotone rescaling of the axis shows exactly what it tests.
RHO_AXIS = "within-group Spearman ρ(held-out pretraining loss, metric), unitless"
_BOTTOM_LEGEND = {"orientation": "h", "yanchor": "top", "x": 0, "xanchor": "left"}
CONTROL_NAME = "random init (step 0)"


def plot_metric_vs_quality(summary: pd.DataFrame, *, metric: str, title: str | None = None) -> go.Figure:
    """One metric against held-out pretraining loss (axis reversed: better pretraining to the right).

    One line per depth/corpus/noise group through its pretrained checkpoints, with t intervals over
    pretraining runs of the metric (the loss's own intervals are in the report's per-checkpoint table); the
    random-init control (step 0) of each group is a separate cross.

    Args:
        summary: ``modlens.analysis.summarize_levels`` output.
        metric: the metric shown.
        title: figure title.
    """
    part = _metric_rows(summary, metric)
    fig = go.Figure()
    for trace in _traces(part, legend=True):
        fig.add_trace(trace)
    fig.update_layout(
        template=TEMPLATE,
        title=title or f"{metric} against pretraining quality (mean over runs, 95% t interval)",
        legend=_BOTTOM_LEGEND | {"y": -0.2},
        height=520,
    )
    fig.update_xaxes(title=LOSS_AXIS, **_loss_axis(part["pretrain_loss"]))
    fig.update_yaxes(title=metric_info(metric).label)
    return fig


def plot_metrics_grid(
    summary: pd.DataFrame, *, metrics: Sequence[str] | None = None, cols: int = 3, title: str | None = None
) -> go.Figure:
    """Small multiples of ``plot_metric_vs_quality``, one panel per metric (the study's main figure).

    Args:
        summary: ``modlens.analysis.summarize_levels`` output.
        metrics: panels in order (default: every metric of ``summary``, registry order first).
        cols: panels per row.
        title: figure title.
    """
    _require(summary, ("metric", "step", "mean", "pretrain_loss"))
    present = list(dict.fromkeys(summary["metric"]))
    if metrics is None:
        metrics = [m for m in METRICS_INFO if m in present] + sorted(m for m in present if m not in METRICS_INFO)
    missing = [m for m in metrics if m not in present]
    if missing or not metrics:
        raise ModlensError(f"no summary rows for metrics {', '.join(missing) or '(none given)'}")
    cols = max(1, min(cols, len(metrics)))
    rows = math.ceil(len(metrics) / cols)
    fig = make_subplots(
        rows=rows,
        cols=cols,
        subplot_titles=list(metrics),
        horizontal_spacing=0.3 / cols,
        vertical_spacing=min(0.33 / rows, 0.2),
    )
    for i, metric in enumerate(metrics):
        row, col = divmod(i, cols)
        for trace in _traces(_metric_rows(summary, metric), legend=i == 0):
            fig.add_trace(trace, row=row + 1, col=col + 1)
        fig.update_xaxes(title_text=PANEL_LOSS_AXIS, row=row + 1, col=col + 1)
        fig.update_yaxes(title_text=_wrap(metric_info(metric).label), row=row + 1, col=col + 1)
    # one x range for every panel, so positions compare across panels
    fig.update_xaxes(**_loss_axis(summary.loc[summary["metric"].isin(metrics), "pretrain_loss"]))
    fig.update_xaxes(title_font_size=11)
    fig.update_yaxes(title_font_size=11)
    fig.update_annotations(font_size=13)
    fig.update_layout(
        template=TEMPLATE,
        title=title or "Metrics against pretraining quality (mean over runs, 95% t interval; × random init)",
        height=330 * rows + 140,
        width=340 * cols + 120,
        legend=_BOTTOM_LEGEND | {"y": -0.35 / rows},
    )
    _legend_in_empty_cells(fig, len(metrics), rows, cols)
    return fig


def _legend_in_empty_cells(fig: go.Figure, n_panels: int, rows: int, cols: int) -> None:
    """A grid whose last row is not full: its empty cells lose their axes and hold the legend instead."""
    if n_panels == rows * cols:
        return
    for index in range(n_panels, rows * cols):
        row, col = divmod(index, cols)
        fig.update_xaxes(visible=False, row=row + 1, col=col + 1)
        fig.update_yaxes(visible=False, row=row + 1, col=col + 1)
    first = fig.get_subplot(rows, n_panels % cols + 1)
    fig.update_layout(
        legend={
            "orientation": "v",
            "x": first.xaxis.domain[0],
            "xanchor": "left",
            "y": first.yaxis.domain[1],
            "yanchor": "top",
        }
    )


def plot_correlations(
    correlations: pd.DataFrame, *, scopes: Sequence[str] | None = None, title: str | None = None
) -> go.Figure:
    """Forest plot of the within-group Spearman ρ(pretraining loss, metric) with its interval, one row per metric.

    Args:
        correlations: ``modlens.analysis.rank_correlations`` output.
        scopes: which scopes to show, one trace each (default: all, ``"within groups"`` first; only that
            when there is a single group, which it equals).
        title: figure title.
    """
    _require(correlations, ("metric", "scope", "rho", "ci_low", "ci_high", "n_units", "n_runs", "note"))
    if scopes is None:
        scopes = list(dict.fromkeys(correlations["scope"]))
        if len(scopes) == 2 and WITHIN in scopes:  # one group: it is the headline row, drawn once
            scopes = [WITHIN]
    scopes = list(scopes)
    order = [m for m in METRICS_INFO if m in set(correlations["metric"])]
    order += sorted(set(correlations["metric"]) - set(order))
    order.sort(key=lambda m: metric_info(m).direction == 0)  # modularity metrics first, context after
    first = correlations[correlations["scope"] == scopes[0]].set_index("metric") if scopes else None
    ticks = {m: _tick(m, None if first is None or m not in first.index else first.loc[m]) for m in order}
    fig = go.Figure()
    for i, scope in enumerate(scopes):
        part = correlations[correlations["scope"] == scope].set_index("metric").reindex(order).dropna(subset=["scope"])
        rho = part["rho"].to_numpy(dtype=float)
        fig.add_trace(
            go.Scatter(
                x=rho,
                y=[ticks[m] for m in part.index],
                mode="markers",
                name=str(scope),
                marker={"color": PALETTE[i % len(PALETTE)], "size": 9 if scope == WITHIN else 7},
                error_x=_error(rho, part["ci_low"], part["ci_high"]),
                customdata=np.stack([part["n_units"], part["n_runs"], part["note"].fillna("")], axis=1),
                hovertemplate="%{y}<br>ρ %{x:.2f}<br>units %{customdata[0]}, runs %{customdata[1]}"
                "<br>%{customdata[2]}<extra>" + str(scope) + "</extra>",
            )
        )
    fig.add_vline(x=0, line_dash="dot", line_color="#888")
    fig.update_layout(
        template=TEMPLATE,
        title=title
        or "Within-group rank correlation with pretraining loss (95% interval); ρ < 0: metric rises with better "
        "pretraining",
        scattermode="group",
        height=max(360, 36 * len(order) * max(1, len(scopes)) ** 0.5 + 220),
        width=980,
        legend=_BOTTOM_LEGEND | {"y": -0.22, "title": "scope"},
        margin={"b": 150},
    )
    fig.update_xaxes(title=RHO_AXIS, range=[-1.05, 1.05])
    labels = list(ticks.values())
    fig.update_yaxes(
        title="metric [which way is more modular]",
        autorange="reversed",
        automargin=True,
        type="category",
        categoryorder="array",
        categoryarray=labels,
        tickmode="array",
        tickvals=labels,
        range=[len(labels) - 0.5, -0.5],
    )
    return fig


def _loss_axis(losses: pd.Series) -> dict:
    """A reversed log axis over the given losses (better pretraining to the right), ticked at powers of ten
    (at its two ends when it spans less than two of them)."""
    values = np.asarray(losses, dtype=float)
    values = values[np.isfinite(values) & (values > 0)]
    if values.size == 0:
        return {"type": "log", "autorange": "reversed"}
    low, high = float(np.log10(values.min())), float(np.log10(values.max()))
    pad = max(0.08 * (high - low), 0.05)
    low, high = low - pad, high + pad
    ticks = [10.0**k for k in range(math.ceil(low), math.floor(high) + 1)]
    for digits in (1, 2, 3):  # less than two decades: a few values across it, as round as still distinct
        if len(ticks) >= 2:
            break
        rounded = {float(f"{v:.{digits}g}") for v in np.geomspace(10**low, 10**high, 5)}
        ticks = sorted(t for t in rounded | set(ticks) if low <= math.log10(t) <= high)
    return {
        "type": "log",
        "range": [high, low],  # reversed
        "tickmode": "array",
        "tickvals": ticks,
        "ticktext": [f"{t:g}" for t in ticks],
    }


def _wrap(text: str, width: int = 34) -> str:
    """A panel's axis title on lines of at most about ``width`` characters (plotly does not wrap)."""
    lines: list[str] = []
    for word in text.split():
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return "<br>".join(lines)


def _tick(metric: str, row: pd.Series | None) -> str:
    """The metric's row label: which way is modular, and why there is no ρ when there is none."""
    direction = metric_info(metric).direction
    tick = f"{metric} [{'higher' if direction > 0 else 'lower'} = modular]" if direction else f"{metric} [context]"
    if row is not None and not np.isfinite(row["rho"]):
        tick += f" (no ρ: {row['note'] or 'undefined'})"
    return tick


def _metric_rows(summary: pd.DataFrame, metric: str) -> pd.DataFrame:
    _require(summary, ("metric", "step", "mean", "ci_low", "ci_high", "pretrain_loss"))
    part = summary[summary["metric"] == metric]
    if part.empty:
        raise ModlensError(f"no summary rows for metric {metric!r}; have {', '.join(sorted(set(summary['metric'])))}")
    return part


def _traces(part: pd.DataFrame, *, legend: bool) -> list[go.Scatter]:
    """Per group: a line through the pretrained levels and a cross for the random-init control."""
    groups = [c for c in GROUP_COLUMNS if c in part.columns]
    traces, shown_control = [], False
    keyed = part.groupby(groups, sort=True) if groups else [((), part)]
    for i, (key, sub) in enumerate(keyed):
        key = key if isinstance(key, tuple) else (key,)
        name = group_label(groups, key)
        colour = PALETTE[i % len(PALETTE)]
        for is_control, rows in ((False, sub[sub["step"] != CONTROL_STEP]), (True, sub[sub["step"] == CONTROL_STEP])):
            if rows.empty:
                continue
            rows = rows.sort_values("pretrain_loss", ascending=False)
            traces.append(
                go.Scatter(
                    x=rows["pretrain_loss"].to_numpy(dtype=float),
                    y=rows["mean"].to_numpy(dtype=float),
                    mode="markers" if is_control else "lines+markers",
                    name=CONTROL_NAME if is_control else name,
                    legendgroup=CONTROL_NAME if is_control else name,
                    showlegend=legend and (not is_control or not shown_control),
                    marker={
                        "color": colour,
                        "symbol": "x" if is_control else "circle",
                        "size": 10 if is_control else 7,
                    },
                    line={"color": colour},
                    error_y=_error(rows["mean"], rows["ci_low"], rows["ci_high"]),
                    customdata=np.stack([rows["step"], rows.get("n_runs", rows["step"] * 0)], axis=1),
                    hovertemplate=name + "<br>step %{customdata[0]} (%{customdata[1]} runs)"
                    "<br>loss %{x:.3g}<br>mean %{y:.3g}<extra></extra>",
                )
            )
            shown_control = shown_control or (is_control and legend)
    return traces


def _error(centre: np.ndarray | pd.Series, low: pd.Series | None, high: pd.Series | None, *, width: int = 3) -> dict:
    """Asymmetric error bars from an interval; a missing interval (one run) draws no bar."""
    if low is None or high is None:
        return {"visible": False}
    centre_a = np.asarray(centre, dtype=float)
    plus = np.nan_to_num(np.asarray(high, dtype=float) - centre_a, nan=0.0)
    minus = np.nan_to_num(centre_a - np.asarray(low, dtype=float), nan=0.0)
    return {"type": "data", "symmetric": False, "array": plus, "arrayminus": minus, "width": width, "thickness": 1.2}


def _require(df: pd.DataFrame, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ModlensError(f"the frame lacks columns {', '.join(missing)}")
