"""The study's report: one self-contained HTML page for a paper reader. It opens with the answer's table and
the main figure; the answer in words, the other figures (each captioned from its data), the tables, config and
provenance follow (plotly.js embedded once). Rendering only: the numbers come from ``modlens.analysis``."""

import html
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from modlens.analysis import PRIMARY_METRICS, QUESTION
from modlens.analysis.answer import POWER_STUDIES
from modlens.analysis.correlation import N_PERM, WITHIN
from modlens.analysis.frame import GROUP_COLUMNS
from modlens.analysis.methods import MethodAnalysis
from modlens.analysis.metrics import metric_info
from modlens.analysis.primary import ALPHA
from modlens.analysis.study import StudyAnalysis, analyse_study
from modlens.report.study_figures import CORRELATIONS, MAIN, ReportFigure, main_metrics, study_figures

REPORT_FILE = "report.html"
# Table headers in words for the frame columns shown as they are.
_HEADERS = {"depth": "depth (layers)", "label_noise": "label noise", "n_units": "units", "n_runs": "runs"}
_STYLE = (
    "body{font-family:Helvetica,Arial,sans-serif;max-width:1150px;margin:2em auto;padding:0 1em;color:#222}"
    "table{border-collapse:collapse;font-size:12px;margin:.5em 0 1em}th,td{border:1px solid #ccc;padding:3px 6px;"
    "text-align:right}th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}"
    ".question{font-size:1.15em;margin:.3em 0 1.2em}.caption{font-size:.92em;color:#333;max-width:60em}"
    ".summary{border-left:4px solid #0072B2;padding-left:.8em}pre{background:#f7f7f7;"
    "padding:1em;overflow:auto;font-size:12px}section{margin-bottom:2.2em}li{margin-bottom:.5em}"
    "h2{font-size:1.25em;margin-bottom:.3em}summary{cursor:pointer;font-weight:bold}"
)


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
    figures: Mapping[str, ReportFigure] | None = None,
) -> str:
    """The HTML of the report from an already computed ``StudyAnalysis`` (see ``build_study_report``).

    Args:
        analysis: the numbers.
        config, provenance: shown verbatim at the end.
        extra_figures: further figures by heading, after the report's own.
        title: page title.
        figures: the report's figures by name (default: ``study_figures(analysis)``); ``main`` and
            ``correlations`` lead, the others follow in order.
    """
    own = dict(figures) if figures is not None else study_figures(analysis)
    extra = [ReportFigure(_slug(heading, i), heading, fig) for i, (heading, fig) in enumerate(extra_figures.items())]
    ordered = [own[n] for n in (MAIN, CORRELATIONS) if n in own]
    ordered += [f for n, f in own.items() if n not in (MAIN, CORRELATIONS)] + extra
    numbers = {f.name: i for i, f in enumerate(ordered, start=1)}
    divs = _figure_divs(ordered)
    found = analysis.answer
    shown = main_metrics(analysis.summary, list(found.primary["metric"]))
    figure = {f.name: _figure_section(f, numbers[f.name], divs[f.name]) for f in ordered}
    sections = [
        f"<p class='question'><b>Question.</b> {_e(QUESTION)}</p>",
        "<section id='answer'><h2>Answer: the primary metrics</h2>"
        f"<p class='caption'><b>Table 1.</b> {_e(primary_caption(analysis))}</p>"
        + _table(_without_empty_notes(primary_display(found.primary)))
        + "</section>",
        *(figure[n] for n in (MAIN,) if n in figure),
        "<section id='summary'><h2>The answer in words</h2>"
        + "".join(f"<p class='summary'>{_e(s)}</p>" for s in found.summary)
        + f"<p class='caption'>{_e(method_note(analysis))}</p></section>",
        *_methods_section(analysis.methods),
        *(figure[f.name] for f in ordered if f.name != MAIN),
        *_counts_section(analysis.counts),
        "<section id='descriptive'><h2>Descriptive metrics</h2><p>Estimates and intervals only: no verdict, "
        "and no count of metrics by direction.</p><details><summary>"
        f"{len(found.findings)} findings, one sentence each</summary><ul>"
        + "".join(f"<li>{_e(f.sentence)}</li>" for f in found.findings)
        + "</ul></details></section>",
        "<section id='correlations'><h2>Within-group rank correlations (and per group)</h2>"
        + _table(_correlation_table(analysis.correlations))
        + "</section>",
        "<section id='control'><h2>Random-init control (descriptive)</h2>"
        + _table(_control_table(analysis.control))
        + "</section>",
        "<section id='checkpoints'><h2>Per-checkpoint table</h2><p>Mean over pretraining runs [95% t interval "
        "over runs]; pretraining quality measured on held-out primitives of the base checkpoint.</p>"
        + _table(checkpoint_table(analysis.summary, shown))
        + "<details><summary>All metrics</summary>"
        + _table(checkpoint_table(analysis.summary, list(dict.fromkeys(analysis.summary["metric"]))))
        + "</details></section>",
        "<section id='config'><details><summary>Configuration</summary><pre>"
        + _e(_json(config))
        + "</pre></details></section>",
        "<section id='provenance'><details><summary>Provenance</summary><pre>"
        + _e(_json(provenance))
        + "</pre></details></section>",
    ]
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head>"
        f"<body><h1>{_e(title)}</h1>{''.join(sections)}</body></html>"
    )


def primary_caption(analysis: StudyAnalysis) -> str:
    """Table 1's caption: what ρ, p and the verdict are, with the numbers of this study."""
    primary = analysis.answer.primary
    n = len(primary)
    ci = float(primary["ci"].dropna().iloc[0]) if primary["ci"].notna().any() else 0.95
    return (
        f"The {n} declared primary metric{'s' if n != 1 else ''}. ρ: Spearman rank correlation of held-out "
        "pretraining loss with the metric within each group of runs (below 0: the metric rises as pretraining "
        f"improves), with its {ci:.0%} interval; p: within-run permutation test ({analysis.n_perm} permutations), "
        f"Holm-adjusted over the {n}; a verdict needs an adjusted p below {ALPHA:g}. Units: fine-tuned pretrained "
        "checkpoints (runs: pretraining trajectories)."
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


def methods_display(per_method: pd.DataFrame) -> pd.DataFrame:
    """The per-method primary tables as printed: the method, then the columns of ``primary_display``."""
    out = primary_display(per_method)
    out.insert(0, "method", per_method["method"].to_numpy())
    return out


def contrast_display(contrast: pd.DataFrame) -> pd.DataFrame:
    """The method contrasts as printed: metric, method, the paired difference with its interval, p, Holm p, runs."""
    out = contrast[["metric", "method"]].copy()
    out["difference from reference [interval]"] = [
        _cell(r["difference"], r["ci_low"], r["ci_high"]) for _, r in contrast.iterrows()
    ]
    out["reference"] = contrast["reference"]
    out["step"] = contrast["best_step"]
    out["p (sign flip)"] = [_p(v) for v in contrast["p_value"]]
    out["Holm-adjusted p"] = [_p(v) for v in contrast["p_adjusted"]]
    out["paired runs"] = contrast["n_runs"]
    out["note"] = contrast["note"]
    return out


def _methods_section(methods: MethodAnalysis | None) -> list[str]:
    if methods is None:
        return []
    contrast = methods.contrast
    ci = float(contrast["ci"].iloc[0]) if len(contrast) else 0.95
    absent = (
        "<p>Metrics a method does not measure, with the reason:</p>"
        + _table(methods.absent[["method", "metric", "reason"]])
        if len(methods.absent)
        else ""
    )
    return [
        "<section id='methods'><h2>Fine-tuning methods</h2>"
        + "".join(f"<p class='summary'>{_e(s)}</p>" for s in methods.sentences)
        + "<p class='caption'><b>Per method.</b> The primary metrics' within-group ρ on each method's fine-tunes "
        "alone, tested and Holm-corrected as in Table 1 within each method; the answer above is the "
        f"{_e(methods.headline)} rows'.</p>"
        + _table(_without_empty_notes(methods_display(methods.per_method)))
        + "<p class='caption'><b>Between methods.</b> Each method minus "
        f"{_e(methods.headline)} at the most-pretrained checkpoint of each group, paired within pretraining runs "
        f"(both fine-tunes of the same base checkpoint): mean over runs with its {ci:.0%} interval (± z · the "
        "sign-flip standard error), sign-flip p, Holm-adjusted over the methods compared on one metric. An "
        "absent metric is not compared and says why.</p>"
        + _table(_without_empty_notes(contrast_display(contrast)))
        + absent
        + "</section>"
    ]


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
    if correlations["scope"].nunique() == 2:  # one group: its own row repeats the within-groups row
        correlations = correlations[correlations["scope"] == WITHIN]
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


def _figure_divs(figures: Sequence[ReportFigure]) -> dict[str, str]:
    """Each figure's div by name (id ``fig-<name>``); plotly.js is inlined in the first only."""
    return {
        f.name: f.figure.to_html(full_html=False, include_plotlyjs=i == 0, div_id=f"fig-{f.name}")
        for i, f in enumerate(figures)
    }


def _figure_section(figure: ReportFigure, number: int, div: str) -> str:
    caption = f"<p class='caption'><b>Figure {number}.</b> {_e(figure.caption)}</p>" if figure.caption else ""
    return f"<section id='figure-{figure.name}'><h2>Figure {number}. {_e(figure.heading)}</h2>{div}{caption}</section>"


def _slug(heading: str, index: int) -> str:
    return re.sub(r"[^a-z0-9]+", "-", heading.lower()).strip("-") or f"figure-{index}"


def _table(df: pd.DataFrame) -> str:
    return df.rename(columns=_HEADERS).to_html(index=False, escape=True, na_rep="—", border=0)


def _without_empty_notes(table: pd.DataFrame) -> pd.DataFrame:
    return table if table["note"].astype(bool).any() else table.drop(columns="note")


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str, ensure_ascii=False)


def _e(text: str) -> str:
    return html.escape(text, quote=False)
