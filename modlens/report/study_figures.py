"""The study report's figures, each with a name (its file stem and HTML id), a heading and a caption written
from the data it shows. Statistics come from ``modlens.analysis``; drawing from ``modlens.plots``."""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from modlens.analysis.correlation import WITHIN
from modlens.analysis.frame import CONTROL_STEP, GROUP_COLUMNS
from modlens.analysis.layers import drift_by_layer, mask_density_by_layer
from modlens.analysis.methods import METHOD, headline_method, method_rows, methods_in, stated_reason
from modlens.analysis.metrics import METRICS_INFO
from modlens.analysis.study import StudyAnalysis
from modlens.plots.drift import plot_drift_by_depth
from modlens.plots.labels import label
from modlens.plots.masks import plot_mask_density
from modlens.plots.study import plot_correlations, plot_metrics_grid
from modlens.plots.style import PALETTE

MAIN = "main"
CORRELATIONS = "correlations"
OTHER_METRICS = "other_metrics"
WEIGHT_DRIFT = "weight_drift"
ACTIVATION_DRIFT = "activation_drift"
PANELS_PER_ROW = 3
MAX_PANELS = 9
# Headline metrics for the main figure after the primary ones (README figure), at most nine panels in all.
MAIN_METRICS = (
    "heldout_composite_accuracy",
    "reuse_specificity",
    "weight_drift_upper_share",
    "primitive_retention",
    "structural_compositionality",
    "subnetwork_score",
    "mask_iou_excess",
    "inheritance_precision_excess",
    "cka_drift_upper_share",
    "disentanglement_error",
)
# The per-layer drift the study records, the summary metric built from it, and the figure's name and heading.
DRIFTS = (
    ("weight_rel_change", "weight_drift_upper_share", WEIGHT_DRIFT, "Weight drift by depth"),
    ("cka_drift", "cka_drift_upper_share", ACTIVATION_DRIFT, "Activation drift by depth (residual stream)"),
)
DASHES = ("solid", "dash", "dot", "dashdot", "longdash")  # one per model depth when methods are overlaid
HALVES = (
    "The shaded halves are the lower (relative depth below 0.5) and upper (above 0.5) layers, split at the dotted "
    "line; with an odd number of layers the middle layer (depth 0.5) counts half to each."
)


@dataclass(frozen=True)
class ReportFigure:
    """One figure of the report.

    Attributes:
        name: its name: the static file's stem (``figures/<name>.png``) and the HTML id (``fig-<name>``).
        heading: the heading above it.
        figure: the plotly figure.
        caption: what it shows, written from the data it was drawn from.
    """

    name: str
    heading: str
    figure: go.Figure
    caption: str = ""


def main_metrics(summary: pd.DataFrame, primary: Sequence[str] = ()) -> list[str]:
    """The main figure's panels: the primary metrics present, then headline metrics, at most nine and whole
    rows of three (no empty cell); every metric present when none of those is."""
    present = set(summary["metric"])
    chosen = list(dict.fromkeys(m for m in (*primary, *MAIN_METRICS) if m in present))[:MAX_PANELS]
    if len(chosen) > PANELS_PER_ROW:
        keep = max(len(chosen) // PANELS_PER_ROW * PANELS_PER_ROW, len([m for m in primary if m in present]))
        chosen = chosen[:keep]
    return chosen or [m for m in METRICS_INFO if m in present] + sorted(present - set(METRICS_INFO))


def study_figures(analysis: StudyAnalysis) -> dict[str, ReportFigure]:
    """The figures of the analysis by name: ``main`` (the primary and headline metrics against pretraining
    quality), ``correlations`` (forest plot of ρ) and, when metrics are left, ``other_metrics``."""
    summary = analysis.summary
    primary = list(analysis.answer.primary["metric"])
    main = main_metrics(summary, primary)
    figures = {
        MAIN: ReportFigure(
            MAIN,
            "Modularity against pretraining quality",
            _untitled(plot_metrics_grid(summary, metrics=main, cols=min(PANELS_PER_ROW, len(main)))),
            _grid_caption(summary, main, primary),
        ),
        CORRELATIONS: ReportFigure(
            CORRELATIONS,
            "Within-group rank correlations with pretraining loss",
            _untitled(plot_correlations(analysis.correlations)),
            _correlation_caption(analysis.correlations),
        ),
    }
    rest = [m for m in dict.fromkeys(summary["metric"]) if m not in main]
    if rest:
        ordered = [m for m in METRICS_INFO if m in rest] + sorted(set(rest) - set(METRICS_INFO))
        figures[OTHER_METRICS] = ReportFigure(
            OTHER_METRICS,
            "Other metrics against pretraining quality",
            _untitled(plot_metrics_grid(summary, metrics=ordered)),
            _grid_caption(summary, ordered, ()),
        )
    return figures


def drift_figures(drift_layers: pd.DataFrame) -> dict[str, ReportFigure]:
    """Drift by relative depth (``weight_drift``, ``activation_drift``), one line per depth and pretraining step
    (mean over seeds and corpora), the lower and upper half of the layers marked and explained. With several
    fine-tuning methods, one line per method (colour) and depth (dash) at the most-pretrained step instead."""
    figures: dict[str, ReportFigure] = {}
    for column, share, name, heading in DRIFTS:
        per = drift_by_layer(drift_layers, column)
        if per.empty:
            continue
        if METHOD in per.columns:
            fig, caption = _method_drift(per, column, drift_layers)
        else:
            fig, caption = _step_drift(per, column)
        caption += f" {HALVES} The metric {share} is the upper half's share of the drift summed over layers."
        figures[name] = ReportFigure(name, heading, _untitled(fig), caption)
    return figures


def _step_drift(per: pd.DataFrame, column: str) -> tuple[go.Figure, str]:
    per["model"] = [
        f"{d} layers, step {s}" + (" (random init)" if s == CONTROL_STEP else "")
        for d, s in zip(per["depth"], per["step"], strict=True)
    ]
    runs = _span(per["n_runs"])
    caption = (
        f"{_capital(label(column))} of each layer of the fine-tuned models, against the "
        "layer's relative depth (layer / (layers − 1)); one line per model depth and pretraining step "
        f"(steps {_steps(per['step'])}), each the mean over {runs} run{'' if runs == '1' else 's'}."
    )
    return plot_drift_by_depth(per, value=column), caption


def _method_drift(per: pd.DataFrame, column: str, drift_layers: pd.DataFrame) -> tuple[go.Figure, str]:
    """Where in depth each method changes the model: one line per method and model depth, at each depth's
    highest step; a method without drift values is named with its rows' reason."""
    methods = methods_in(drift_layers)
    per = per[per["step"] == per.groupby("depth")["step"].transform("max")].copy()
    keys = zip(per[METHOD], per["depth"], per["step"], strict=True)
    per["model"] = [f"{m}, {d} layers, step {s}" for m, d, s in keys]
    fig = plot_drift_by_depth(per, value=column)
    shown = [m for m in methods if m in set(per[METHOD])]
    colour = {m: PALETTE[i % len(PALETTE)] for i, m in enumerate(shown)}
    depths = sorted(set(per["depth"]))
    style = {
        model: {"color": colour[m], "dash": DASHES[depths.index(d) % len(DASHES)]}
        for model, m, d in zip(per["model"], per[METHOD], per["depth"], strict=True)
    }
    fig.for_each_trace(lambda t: t.update(line=style[t.name]) if t.name in style else None)
    runs = _span(per["n_runs"])
    missing = [m for m in methods if m not in shown]
    caption = (
        f"{_capital(label(column))} of each layer of the fine-tuned models against the layer's relative depth "
        "(layer / (layers − 1)): where in depth each fine-tuning method changes the model. One line per method "
        f"(colour: {', '.join(shown)}) and model depth (dash), at the most-pretrained step of each depth "
        f"(step {_steps(per['step'])}), each the mean over {runs} run{'' if runs == '1' else 's'}."
    )
    if missing:
        reasons = "; ".join(f"{m} ({stated_reason(method_rows(drift_layers, m))})" for m in missing)
        caption += f" No {label(column)} value for {reasons}."
    return fig, caption


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def mask_figures(mask_layers: pd.DataFrame) -> dict[str, ReportFigure]:
    """Kept fraction of the tuned models' subroutine masks per layer, one figure per model depth (named
    ``mask_density_<depth>_layers``), bars per pretraining step and unit group (mean over seeds, corpora,
    subroutines and mask seeds)."""
    figures: dict[str, ReportFigure] = {}
    per_layer = mask_density_by_layer(mask_layers)
    for depth, per in per_layer.groupby("depth"):
        per = per.drop(columns="depth").assign(mask=[f"step {s}" for s in per["step"]])
        layers = f"{depth} layer{'' if depth == 1 else 's'}"
        heading = f"Mask density by layer ({layers}; tuned models)"
        groups = ", ".join(dict.fromkeys(per["group"]))
        caption = (
            f"Fraction of units kept by the fine-tuned models' subroutine masks in each layer ({layers}), one bar per "
            f"pretraining step (steps {_steps(per['step'])}) and unit group ({groups}), averaged over seeds, "
            "corpora, subroutines and mask seeds."
        )
        if len(methods_in(mask_layers)) > 1:
            caption += f" Masks of the {headline_method(methods_in(mask_layers))} fine-tunes only."
        name = f"mask_density_{depth}_layers"
        figures[name] = ReportFigure(name, heading, _untitled(plot_mask_density(per)), caption)
    return figures


def _untitled(fig: go.Figure) -> go.Figure:
    """The figure without its own title: on the page its heading and caption say what it shows."""
    return fig.update_layout(title=None, margin={"t": 60})  # room for the toolbar above the top panels


def _grid_caption(summary: pd.DataFrame, metrics: Sequence[str], primary: Sequence[str]) -> str:
    part = summary[summary["metric"].isin(metrics)]
    pretrained = part[part["step"] != CONTROL_STEP]
    ci = float(part["ci"].iloc[0]) if "ci" in part and len(part) else 0.95
    groups = [c for c in GROUP_COLUMNS if c in part.columns]
    n_groups = len(part[groups].drop_duplicates()) if groups else 1
    runs = _span(pretrained["n_runs"]) if len(pretrained) else "0"
    text = (
        "Each panel is one metric (y; units in its axis title) against the held-out pretraining loss of the "
        "fine-tuned model's base checkpoint (x, nats/token, reversed: better pretraining to the right). Points: the "
        f"mean over the {runs} pretraining run{'' if runs == '1' else 's'} of each checkpoint (steps "
        f"{_steps(pretrained['step'])}); bars: {ci:.0%} t intervals of the metric over runs; lines join the "
        f"checkpoints of {'each of the ' + str(n_groups) + ' groups' if n_groups > 1 else 'the one group'}"
    )
    if (part["step"] == CONTROL_STEP).any():
        text += "; × marks the random initialisation (step 0), the control"
    shown = [m for m in primary if m in metrics]
    if shown:
        text += f". The first {len(shown)} panel{'s are' if len(shown) > 1 else ' is'} the primary metric"
        text += f"{'s' if len(shown) > 1 else ''} ({', '.join(shown)}), tested in Table 1"
    return text + "."


def _correlation_caption(correlations: pd.DataFrame) -> str:
    within = correlations[correlations["scope"] == WITHIN]
    defined = within[np.isfinite(within["rho"].to_numpy(dtype=float))]
    units = _span(defined["n_units"]) if len(defined) else "0"
    runs = _span(defined["n_runs"]) if len(defined) else "0"
    scopes = len(set(correlations["scope"]) - {WITHIN})
    if defined.empty:
        return (
            "Spearman rank correlation ρ between held-out pretraining loss and each metric within each group of runs: "
            "no metric has one yet (the reason follows each name)."
        )
    text = (
        "Spearman rank correlation ρ between held-out pretraining loss and each metric within each group of runs "
        f"(dot), with its interval (bar), over {units} pretrained units of {runs} runs per metric. ρ below 0: the "
        "metric rises as pretraining improves. The bracket after each metric says which direction is more modular "
        "(context metrics have none). Only the primary metrics get a verdict (Table 1); the others are descriptive"
    )
    if scopes > 1:
        text += f"; the {scopes} groups are also shown one by one"
    missing = len(within) - len(defined)
    if missing:
        text += f". {missing} metric{'s have' if missing > 1 else ' has'} no ρ (the reason follows its name)"
    return text + "."


def _span(values: pd.Series) -> str:
    """``3`` or ``2–3``: the range of a count column."""
    low, high = int(values.min()), int(values.max())
    return str(low) if low == high else f"{low}–{high}"


def _steps(steps: pd.Series) -> str:
    return ", ".join(str(int(s)) for s in sorted(set(steps)))
