"""The study's report: one self-contained HTML page that opens with the question, the primary metrics'
verdicts and the main figure, then the descriptive metrics, tables, config and provenance (plotly.js
embedded once)."""

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
    PRIMARY_METRICS,
    QUESTION,
    Answer,
    answer_from,
    checkpoint_counts,
    design_power,
    random_init_control,
    rank_correlations,
    summarize_levels,
)
from modlens.analysis.answer import POWER_STUDIES
from modlens.analysis.context import context_sentences
from modlens.analysis.correlation import N_PERM
from modlens.analysis.metrics import METRICS_INFO, metric_info
from modlens.analysis.units import GROUP_COLUMNS
from modlens.errors import ModlensError
from modlens.plots.study import plot_correlations, plot_metrics_grid

REPORT_FILE = "report.html"
MAIN_FIGURE = "Main figure: modularity against pretraining quality"
CORRELATION_FIGURE = "Within-group rank correlations with pretraining loss"
OTHER_FIGURE = "Other metrics against pretraining quality"
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
_STYLE = (
    "body{font-family:Helvetica,Arial,sans-serif;max-width:1150px;margin:2em auto;padding:0 1em;color:#222}"
    "table{border-collapse:collapse;font-size:12px;margin:1em 0}th,td{border:1px solid #ccc;padding:3px 6px;"
    "text-align:right}th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}"
    ".summary{font-size:1.1em;border-left:4px solid #0072B2;padding-left:.8em}pre{background:#f7f7f7;"
    "padding:1em;overflow:auto;font-size:12px}section{margin-bottom:2.5em}li{margin-bottom:.5em}"
)


@dataclass(frozen=True)
class StudyAnalysis:
    """Everything the report shows, computed once from the study frame.

    Attributes:
        summary: per-level means over runs (``summarize_levels``).
        correlations: within-group rank correlations (``rank_correlations``).
        control: the random-init control (``random_init_control``).
        answer: the answer, led by the primary metrics.
        counts: fine-tunes reaching their target and masks rejected, per level (``checkpoint_counts``).
        n_perm: permutations per test.
        seed: seed of the permutations.
    """

    summary: pd.DataFrame
    correlations: pd.DataFrame
    control: pd.DataFrame
    answer: Answer
    counts: pd.DataFrame
    n_perm: int = N_PERM
    seed: int = 0


def analyse_study(
    frame: pd.DataFrame,
    *,
    primary_metrics: Sequence[str] = PRIMARY_METRICS,
    n_perm: int = N_PERM,
    ci: float = 0.95,
    seed: int = 0,
    power_studies: int = POWER_STUDIES,
    n_boot: int | None = None,
) -> StudyAnalysis:
    """Per-level summary, within-group correlations, random-init control, the design's power and the answer.

    Args:
        frame: the study frame.
        primary_metrics: the one to three metrics that get a verdict.
        n_perm: permutations per test.
        ci: interval coverage.
        seed: seed of the permutations and of the power simulation.
        power_studies: simulated studies for the design's power (0: not computed).
        n_boot: former name of ``n_perm`` (there is no bootstrap any more), used when given.
    """
    if frame.empty:
        raise ModlensError("the study frame is empty: no fine-tuned checkpoint has been measured yet")
    n_perm = n_boot if n_boot is not None else n_perm
    correlations = rank_correlations(frame, n_perm=n_perm, ci=ci, seed=seed)
    control = random_init_control(frame, n_perm=n_perm, ci=ci, seed=seed)
    design = design_power(frame, n_studies=power_studies, seed=seed)
    return StudyAnalysis(
        summary=summarize_levels(frame, ci=ci),
        correlations=correlations,
        control=control,
        answer=answer_from(
            correlations, control, primary_metrics=primary_metrics, design=design, context=context_sentences(frame)
        ),
        counts=checkpoint_counts(frame),
        n_perm=n_perm,
        seed=seed,
    )


def main_metrics(summary: pd.DataFrame, primary: Sequence[str] = ()) -> list[str]:
    """The main figure's panels: the primary metrics present, then headline metrics, at most nine;
    every metric present when none of those is."""
    present = set(summary["metric"])
    chosen = list(dict.fromkeys(m for m in (*primary, *MAIN_METRICS) if m in present))[:MAX_PANELS]
    return chosen or [m for m in METRICS_INFO if m in present] + sorted(present - set(METRICS_INFO))


def study_figures(analysis: StudyAnalysis) -> dict[str, go.Figure]:
    """The report's own figures by heading (``MAIN_FIGURE``, ``CORRELATION_FIGURE``, ``OTHER_FIGURE``)."""
    main = main_metrics(analysis.summary, list(analysis.answer.primary["metric"]))
    figures = {
        MAIN_FIGURE: plot_metrics_grid(analysis.summary, metrics=main),
        CORRELATION_FIGURE: plot_correlations(analysis.correlations),
    }
    rest = [m for m in dict.fromkeys(analysis.summary["metric"]) if m not in main]
    if rest:
        ordered = [m for m in METRICS_INFO if m in rest] + sorted(set(rest) - set(METRICS_INFO))
        figures[OTHER_FIGURE] = plot_metrics_grid(
            analysis.summary, metrics=ordered, title="Other metrics against pretraining quality (95% t interval)"
        )
    return figures


def build_study_report(
    frame: pd.DataFrame,
    *,
    config: Mapping[str, Any],
    provenance: Mapping[str, Any],
    extra_figures: Mapping[str, go.Figure] = {},
    primary_metrics: Sequence[str] = PRIMARY_METRICS,
    n_perm: int = N_PERM,
    ci: float = 0.95,
    seed: int = 0,
    power_studies: int = POWER_STUDIES,
    title: str = "modlens study: pretraining quality and the modularity of fine-tuned models",
) -> str:
    """The HTML of the study report: one page, plotly.js embedded once, works offline.

    Args:
        frame: the study frame (see ``modlens.analysis``).
        config: the study's resolved config, shown verbatim.
        provenance: where and with what the results were produced, shown verbatim.
        extra_figures: further figures by heading (drift, masks), placed after the study's own.
        primary_metrics, n_perm, ci, seed, power_studies: the analysis (see ``analyse_study``).
        title: page title.
    """
    analysis = analyse_study(
        frame, primary_metrics=primary_metrics, n_perm=n_perm, ci=ci, seed=seed, power_studies=power_studies
    )
    return render_study_report(analysis, config=config, provenance=provenance, extra_figures=extra_figures, title=title)


def render_study_report(
    analysis: StudyAnalysis,
    *,
    config: Mapping[str, Any],
    provenance: Mapping[str, Any],
    extra_figures: Mapping[str, go.Figure] = {},
    title: str = "modlens study",
    figures: Mapping[str, go.Figure] | None = None,
) -> str:
    """The HTML of the report from an already computed ``StudyAnalysis`` (see ``build_study_report``)."""
    own = dict(figures) if figures is not None else study_figures(analysis)
    divs = dict(zip([*own, *extra_figures], _figure_divs({**own, **extra_figures}), strict=True))
    found = analysis.answer
    main = [MAIN_FIGURE] if MAIN_FIGURE in own else []
    sections = [
        f"<section id='question'><h2>Question</h2><p>{_e(QUESTION)}</p></section>",
        "<section id='answer'><h2>Answer: the primary metrics</h2>"
        + "".join(f"<p class='summary'>{_e(s)}</p>" for s in found.summary)
        + _table(primary_display(found.primary))
        + f"<p><small>{_e(method_note(analysis))}</small></p></section>",
        *(_figure_section(h, divs[h]) for h in main),
        *_counts_section(analysis.counts),
        "<section id='descriptive'><h2>Descriptive metrics</h2><p>Estimates and intervals only: no verdict, "
        "and no count of metrics by direction.</p><ul>"
        + "".join(f"<li>{_e(f.sentence)}</li>" for f in found.findings)
        + "</ul></section>",
        *(_figure_section(h, divs[h]) for h in own if h == CORRELATION_FIGURE),
        "<section id='correlations'><h2>Within-group rank correlations (and per group)</h2>"
        + _table(_correlation_table(analysis.correlations))
        + "</section>",
        "<section id='control'><h2>Random-init control (descriptive)</h2>"
        + _table(_control_table(analysis.control))
        + "</section>",
        "<section id='checkpoints'><h2>Per-checkpoint table</h2><p>Mean over pretraining runs [95% t interval "
        "over runs]; pretraining quality measured on held-out primitives of the base checkpoint.</p>"
        + _table(checkpoint_table(analysis.summary, main_metrics(analysis.summary, list(found.primary["metric"]))))
        + "<details><summary>All metrics</summary>"
        + _table(checkpoint_table(analysis.summary, list(dict.fromkeys(analysis.summary["metric"]))))
        + "</details></section>",
        *(_figure_section(h, divs[h]) for h in divs if h not in (MAIN_FIGURE, CORRELATION_FIGURE)),
        "<section id='config'><h2>Configuration</h2><pre>" + _e(_json(config)) + "</pre></section>",
        "<section id='provenance'><h2>Provenance</h2><pre>" + _e(_json(provenance)) + "</pre></section>",
    ]
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head>"
        f"<body><h1>{_e(title)}</h1>{''.join(sections)}</body></html>"
    )


def method_note(analysis: StudyAnalysis) -> str:
    """How the numbers were computed, in one paragraph."""
    ci = float(analysis.answer.primary["ci"].dropna().iloc[0]) if analysis.answer.primary["ci"].notna().any() else 0.95
    return (
        "ρ is the within-group Spearman rank correlation between a unit's held-out pretraining loss (lower = "
        "better pretraining) and its metric, over pretrained checkpoints (step > 0), averaged over "
        "depth/corpus/noise groups weighted by units. Its p-value comes from a within-run permutation test: the "
        "metric values of each pretraining run's checkpoints are permuted among themselves "
        f"({analysis.n_perm} Monte Carlo permutations, seed {analysis.seed}, or all of them when there are fewer), "
        "which is exact when pretraining quality has no effect and keeps each run's own level. Primary metrics "
        "are Holm-corrected over the declared family. The interval is ρ ± z · SE with SE the closed-form "
        f"permutation standard error under no effect ({ci:.0%}; its coverage is checked on simulated studies "
        "by modlens.analysis.calibration). The random-init control pairs each run's best-pretrained checkpoint "
        "with its own step 0 and is tested by flipping the signs of the runs' differences. Units without a "
        "value are dropped and counted."
    )


def primary_display(primary: pd.DataFrame) -> pd.DataFrame:
    """The primary table as printed: metric, ρ, interval, raw and Holm-adjusted p, verdict, runs, exclusions."""
    out = pd.DataFrame({"metric": primary["metric"]})
    out["within-group ρ"] = [f"{v:+.2f}" if np.isfinite(v) else "—" for v in primary["rho"]]
    out["interval"] = [
        f"{lo:+.2f} to {hi:+.2f}" if np.isfinite(lo) else "—"
        for lo, hi in zip(primary["ci_low"], primary["ci_high"], strict=True)
    ]
    out["p"] = [_p(v) for v in primary["p_value"]]
    out["Holm-adjusted p"] = [_p(v) for v in primary["p_adjusted"]]
    out["verdict"] = primary["verdict"]
    out["units (runs)"] = [f"{int(u)} ({int(r)})" for u, r in zip(primary["n_units"], primary["n_runs"], strict=True)]
    out["excluded"] = primary["n_excluded"].fillna(0).astype(int)
    out["note"] = primary["reason"]
    return out


def checkpoint_table(summary: pd.DataFrame, metrics: Sequence[str]) -> pd.DataFrame:
    """One row per level (group, step): runs, pretraining quality, and ``mean [low, high]`` per metric."""
    groups = [c for c in GROUP_COLUMNS if c in summary.columns]
    keys = [*groups, "step"]
    first = summary.groupby(keys, sort=True, dropna=False).first().reset_index()
    table = first[keys].copy()
    table["runs"] = summary.groupby(keys, sort=True, dropna=False)["n_runs"].max().to_numpy()
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


def _counts_section(counts: pd.DataFrame) -> list[str]:
    if counts.empty or not {"reached_target", "mask_rejection_rate"} & set(counts.columns):
        return []
    out = counts.copy()
    if "reached_target" in out:
        out["fine-tunes reaching the target"] = [
            f"{r} of {n}" for r, n in zip(out.pop("reached_target"), out.pop("finetunes"), strict=True)
        ]
    if "mask_rejection_rate" in out:
        out["masks rejected as unfaithful"] = [
            f"{v:.0%}" if np.isfinite(v) else "—" for v in out.pop("mask_rejection_rate")
        ]
    return [
        "<section id='counts'><h2>Fine-tunes and masks counted</h2><p>A fine-tune that misses its accuracy "
        "target, and a mask that does not reproduce its task, are excluded from the mechanistic metrics.</p>"
        + _table(out)
        + "</section>"
    ]


def _p(p: float) -> str:
    return "—" if not np.isfinite(p) else f"{p:.2g}" if p >= 0.001 else "< 0.001"


def _cell(mean: float, low: float, high: float) -> str:
    if not np.isfinite(mean):
        return "—"
    return f"{mean:.3g} [{low:.3g}, {high:.3g}]" if np.isfinite(low) else f"{mean:.3g} (no interval)"


def _correlation_table(correlations: pd.DataFrame) -> pd.DataFrame:
    out = correlations[["metric", "scope", "n_units", "n_runs"]].copy()
    out["excluded"] = correlations["n_excluded"].map(lambda v: "" if not np.isfinite(v) else str(int(v)))
    out["ρ(loss, metric) [interval]"] = [_cell(r["rho"], r["ci_low"], r["ci_high"]) for _, r in correlations.iterrows()]
    out["p (within-run permutation)"] = [_p(v) for v in correlations["p_value"]]
    out["pooled ρ (summary)"] = [f"{v:+.2f}" if np.isfinite(v) else "" for v in correlations["pooled_rho"]]
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
    out["difference [interval]"] = [_cell(r["difference"], r["ci_low"], r["ci_high"]) for _, r in control.iterrows()]
    out["p (sign flip)"] = [_p(v) for v in control["p_value"]]
    out["paired runs"] = control["n_runs"]
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
