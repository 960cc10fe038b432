"""The study's report: one self-contained HTML page with the question, the answer computed from the data,
figures, the per-checkpoint table, config and provenance (plotly.js embedded once)."""

import html
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from modlens.analysis import (
    QUESTION,
    Answer,
    answer_from,
    random_init_control,
    rank_correlations,
    summarize_levels,
)
from modlens.analysis.metrics import METRICS_INFO, metric_info
from modlens.analysis.units import GROUP_COLUMNS
from modlens.errors import ModlensError
from modlens.plots.study import plot_correlations, plot_metrics_grid

REPORT_FILE = "report.html"
# The main figure: the behavioural and mechanistic headline metrics, at most nine panels (README figure).
MAIN_METRICS = (
    "heldout_composite_accuracy",
    "primitive_retention",
    "subnetwork_score",
    "ablation_score",
    "mask_iou",
    "inheritance_precision",
    "weight_drift_upper_share",
    "cka_drift_upper_share",
    "disentanglement_error",
)
_STYLE = (
    "body{font-family:Helvetica,Arial,sans-serif;max-width:1150px;margin:2em auto;padding:0 1em;color:#222}"
    "table{border-collapse:collapse;font-size:12px;margin:1em 0}th,td{border:1px solid #ccc;padding:3px 6px;"
    "text-align:right}th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}"
    ".summary{font-size:1.1em;border-left:4px solid #0072B2;padding-left:.8em}pre{background:#f7f7f7;"
    "padding:1em;overflow:auto;font-size:12px}section{margin-bottom:2.5em}li{margin-bottom:.5em}"
)


@dataclass(frozen=True)
class StudyAnalysis:
    """Everything the report shows, computed once from the study frame."""

    summary: pd.DataFrame
    correlations: pd.DataFrame
    control: pd.DataFrame
    answer: Answer


def analyse_study(frame: pd.DataFrame, *, n_boot: int = 2000, ci: float = 0.95, seed: int = 0) -> StudyAnalysis:
    """Per-level summary, rank correlations, random-init control and the answer, with the same resampling."""
    if frame.empty:
        raise ModlensError("the study frame is empty: no fine-tuned checkpoint has been measured yet")
    correlations = rank_correlations(frame, n_boot=n_boot, ci=ci, seed=seed)
    control = random_init_control(frame, n_boot=n_boot, ci=ci, seed=seed)
    return StudyAnalysis(
        summary=summarize_levels(frame, n_boot=n_boot, ci=ci, seed=seed),
        correlations=correlations,
        control=control,
        answer=answer_from(correlations, control),
    )


def main_metrics(summary: pd.DataFrame) -> list[str]:
    """The main figure's panels: the headline metrics present, else every metric present."""
    present = set(summary["metric"])
    chosen = [m for m in MAIN_METRICS if m in present]
    return chosen or [m for m in METRICS_INFO if m in present] + sorted(present - set(METRICS_INFO))


def study_figures(analysis: StudyAnalysis) -> dict[str, go.Figure]:
    """The report's own figures, by heading: main grid, correlation forest, and the remaining metrics."""
    main = main_metrics(analysis.summary)
    figures = {
        "Main figure: modularity against pretraining quality": plot_metrics_grid(analysis.summary, metrics=main),
        "Rank correlations with pretraining loss": plot_correlations(analysis.correlations),
    }
    rest = [m for m in dict.fromkeys(analysis.summary["metric"]) if m not in main]
    if rest:
        ordered = [m for m in METRICS_INFO if m in rest] + sorted(set(rest) - set(METRICS_INFO))
        figures["Other metrics against pretraining quality"] = plot_metrics_grid(
            analysis.summary, metrics=ordered, title="Other metrics against pretraining quality (95% CI)"
        )
    return figures


def build_study_report(
    frame: pd.DataFrame,
    *,
    config: Mapping[str, Any],
    provenance: Mapping[str, Any],
    extra_figures: Mapping[str, go.Figure] = {},
    n_boot: int = 2000,
    ci: float = 0.95,
    seed: int = 0,
    title: str = "modlens study: pretraining quality and the modularity of fine-tuned models",
) -> str:
    """The HTML of the study report: one page, plotly.js embedded once, works offline.

    Args:
        frame: the study frame (see ``modlens.analysis``).
        config: the study's resolved config, shown verbatim.
        provenance: where and with what the results were produced, shown verbatim.
        extra_figures: further figures by heading (drift, masks), placed after the study's own.
        n_boot, ci, seed: the bootstrap (resamples, coverage, seed).
        title: page title.
    """
    analysis = analyse_study(frame, n_boot=n_boot, ci=ci, seed=seed)
    return render_study_report(
        analysis,
        config=config,
        provenance=provenance,
        extra_figures=extra_figures,
        title=title,
        n_boot=n_boot,
        seed=seed,
    )


def render_study_report(
    analysis: StudyAnalysis,
    *,
    config: Mapping[str, Any],
    provenance: Mapping[str, Any],
    extra_figures: Mapping[str, go.Figure] = {},
    title: str = "modlens study",
    n_boot: int | None = None,
    seed: int | None = None,
    figures: Mapping[str, go.Figure] | None = None,
) -> str:
    """The HTML of the report from an already computed ``StudyAnalysis`` (see ``build_study_report``)."""
    own = dict(figures) if figures is not None else study_figures(analysis)
    all_figures = {**own, **extra_figures}
    divs = _figure_divs(all_figures)
    headings = list(all_figures)
    ci = float(analysis.summary["ci"].iloc[0]) if len(analysis.summary) else 0.95
    method = (
        f"Intervals are percentile bootstrap {ci:.0%} intervals over pretraining seeds"
        + (f" ({n_boot} resamples, seed {seed})" if n_boot is not None else "")
        + ". ρ is Spearman's rank correlation between a unit's held-out pretraining loss (lower = better "
        "pretraining) and its metric, over pretrained checkpoints (step > 0); random init (step 0) is the "
        "control. Strength bands by |ρ|: < 0.1 negligible, < 0.3 weak, < 0.5 moderate, ≥ 0.5 strong."
    )
    found = analysis.answer
    sections = [
        f"<section id='question'><h2>Question</h2><p>{_e(QUESTION)}</p></section>",
        "<section id='answer'><h2>Answer</h2>"
        + "".join(f"<p class='summary'>{_e(s)}</p>" for s in found.summary)
        + f"<p><small>{_e(method)}</small></p><ul>"
        + "".join(f"<li>{_e(f.sentence)}</li>" for f in found.findings)
        + "</ul></section>",
        _figure_section(headings[0], divs[0]),
        _figure_section(headings[1], divs[1]),
        "<section id='correlations'><h2>Rank correlations (pooled and per group)</h2>"
        + _table(_correlation_table(analysis.correlations))
        + "</section>",
        "<section id='control'><h2>Random-init control</h2>" + _table(_control_table(analysis.control)) + "</section>",
        "<section id='checkpoints'><h2>Per-checkpoint table</h2><p>Mean over seeds [95% CI]; "
        "pretraining quality measured on held-out primitives of the base checkpoint.</p>"
        + _table(checkpoint_table(analysis.summary, main_metrics(analysis.summary)))
        + "<details><summary>All metrics</summary>"
        + _table(checkpoint_table(analysis.summary, list(dict.fromkeys(analysis.summary["metric"]))))
        + "</details></section>",
        *(_figure_section(h, d) for h, d in zip(headings[2:], divs[2:], strict=True)),
        "<section id='config'><h2>Configuration</h2><pre>" + _e(_json(config)) + "</pre></section>",
        "<section id='provenance'><h2>Provenance</h2><pre>" + _e(_json(provenance)) + "</pre></section>",
    ]
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head>"
        f"<body><h1>{_e(title)}</h1>{''.join(sections)}</body></html>"
    )


def checkpoint_table(summary: pd.DataFrame, metrics: Sequence[str]) -> pd.DataFrame:
    """One row per level (group, step): seeds, pretraining quality, and ``mean [low, high]`` per metric."""
    groups = [c for c in GROUP_COLUMNS if c in summary.columns]
    keys = [*groups, "step"]
    first = summary.groupby(keys, sort=True, dropna=False).first().reset_index()
    table = first[keys].copy()
    table["seeds"] = summary.groupby(keys, sort=True, dropna=False)["n_seeds"].max().to_numpy()
    table["pretraining loss (nats/token)"] = [
        _cell(r["pretrain_loss"], r["pretrain_loss_low"], r["pretrain_loss_high"]) for _, r in first.iterrows()
    ]
    if "pretrain_accuracy" in first:
        table["pretraining accuracy"] = [f"{v:.3f}" if np.isfinite(v) else "—" for v in first["pretrain_accuracy"]]
    for metric in metrics:
        part = summary[summary["metric"] == metric].set_index(keys)
        cells = [
            _cell(part.loc[k, "mean"], part.loc[k, "ci_low"], part.loc[k, "ci_high"]) if k in part.index else "—"
            for k in first[keys].itertuples(index=False, name=None)
        ]
        table[metric] = cells
    return table


def _cell(mean: float, low: float, high: float) -> str:
    if not np.isfinite(mean):
        return "—"
    return f"{mean:.3g} [{low:.3g}, {high:.3g}]" if np.isfinite(low) else f"{mean:.3g} (no CI)"


def _correlation_table(correlations: pd.DataFrame) -> pd.DataFrame:
    out = correlations[["metric", "scope", "n_units", "n_seeds"]].copy()
    out["ρ(loss, metric) [95% CI]"] = [_cell(r["rho"], r["ci_low"], r["ci_high"]) for _, r in correlations.iterrows()]
    out["better pretraining →"] = correlations["better_pretraining"].replace("", "—")
    out["more modular when"] = [
        {1: "higher", -1: "lower"}.get(metric_info(m).direction, "context") for m in correlations["metric"]
    ]
    out["note"] = correlations["note"]
    return out


def _control_table(control: pd.DataFrame) -> pd.DataFrame:
    out = control[["metric", "scope"]].copy()
    out["best step"] = [f"{s:.0f}" if np.isfinite(s) else "—" for s in control["best_step"]]
    out["random init"] = [f"{v:.3g}" if np.isfinite(v) else "—" for v in control["control_mean"]]
    out["best pretrained"] = [f"{v:.3g}" if np.isfinite(v) else "—" for v in control["best_mean"]]
    out["difference [95% CI]"] = [_cell(r["difference"], r["ci_low"], r["ci_high"]) for _, r in control.iterrows()]
    out["seeds"] = control["n_seeds"]
    out["note"] = control["note"]
    return out


def _figure_divs(figures: Mapping[str, go.Figure]) -> list[str]:
    """Each figure's div; plotly.js is inlined in the first only."""
    divs, used = [], set()
    for i, (heading, fig) in enumerate(figures.items()):
        slug = "fig-" + (re.sub(r"[^a-z0-9]+", "-", heading.lower()).strip("-") or str(i))
        while slug in used:
            slug += "-x"
        used.add(slug)
        divs.append(fig.to_html(full_html=False, include_plotlyjs=i == 0, div_id=slug))
    return divs


def _figure_section(heading: str, div: str) -> str:
    return f"<section><h2>{_e(heading)}</h2>{div}</section>"


def _table(df: pd.DataFrame) -> str:
    return df.to_html(index=False, escape=True, na_rep="—", border=0)


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str, ensure_ascii=False)


def _e(text: str) -> str:
    return html.escape(text, quote=False)
