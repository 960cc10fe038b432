"""The plain-language answer: every sentence is generated from the numbers it reports.

Strength of a rank correlation, by |ρ|: below 0.1 negligible, below 0.3 weak, below 0.5 moderate,
0.5 or more strong. Certainty: a result is stated as established only when its bootstrap interval over
seeds excludes zero; otherwise the sentence says it is inconclusive.
"""

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from modlens.analysis.control import random_init_control
from modlens.analysis.correlation import POOLED, rank_correlations
from modlens.analysis.metrics import METRICS_INFO, metric_info

QUESTION = "How much does pretraining quality affect the modularity of fine-tuned models?"
STRENGTHS = ((0.1, "negligible"), (0.3, "weak"), (0.5, "moderate"), (float("inf"), "strong"))
Verdict = Literal["more modular", "less modular", "inconclusive", "not assessed", "context"]


@dataclass(frozen=True)
class Finding:
    """One sentence and the numbers it was generated from.

    Attributes:
        metric: metric name.
        kind: ``"correlation"`` (ρ of pretraining loss and the metric) or ``"control"`` (best-pretrained
            minus random init).
        sentence: the plain-language statement.
        estimate: ρ, or the difference from random init.
        ci_low, ci_high: its bootstrap interval over seeds (NaN when there is none).
        n_seeds: seeds behind it.
        n_units: units behind it (for a control: groups).
        verdict: what it says about modularity (``"context"`` for metrics that do not measure it).
        strength: for correlations, the |ρ| band; else ``""``.
    """

    metric: str
    kind: Literal["correlation", "control"]
    sentence: str
    estimate: float
    ci_low: float
    ci_high: float
    n_seeds: int
    n_units: int
    verdict: Verdict
    strength: str = ""


@dataclass(frozen=True)
class Answer:
    """The study's answer: a summary computed from the findings, and the findings.

    Attributes:
        question: the research question.
        summary: sentences counting the modularity metrics by verdict, for the correlation and the control.
        findings: per metric, the correlation finding then the control finding.
    """

    question: str
    summary: tuple[str, ...]
    findings: tuple[Finding, ...]

    @property
    def sentences(self) -> list[str]:
        """The summary sentences, then every finding's sentence."""
        return [*self.summary, *(f.sentence for f in self.findings)]


def strength(rho: float) -> str:
    """The band of |ρ|: negligible (< 0.1), weak (< 0.3), moderate (< 0.5) or strong (≥ 0.5)."""
    return next(name for bound, name in STRENGTHS if abs(rho) < bound)


def answer(frame: pd.DataFrame, *, n_boot: int = 2000, ci: float = 0.95, seed: int = 0) -> Answer:
    """The study's answer from the study frame (pooled correlations and pooled random-init controls)."""
    correlations = rank_correlations(frame, n_boot=n_boot, ci=ci, seed=seed)
    control = random_init_control(frame, n_boot=n_boot, ci=ci, seed=seed)
    return answer_from(correlations, control)


def answer_from(correlations: pd.DataFrame, control: pd.DataFrame) -> Answer:
    """The answer from already computed ``rank_correlations`` and ``random_init_control`` frames."""
    corr = correlations[correlations["scope"] == POOLED].set_index("metric")
    ctrl = control[control["scope"] == POOLED].set_index("metric")
    findings: list[Finding] = []
    for metric in _reading_order(set(corr.index) | set(ctrl.index)):
        if metric in corr.index:
            groups = correlations[(correlations["metric"] == metric) & (correlations["scope"] != POOLED)]
            findings.append(_correlation_finding(str(metric), corr.loc[metric], groups))
        if metric in ctrl.index:
            findings.append(_control_finding(str(metric), ctrl.loc[metric]))
    return Answer(question=QUESTION, summary=_summary(findings), findings=tuple(findings))


def _reading_order(metrics: set) -> list:
    """Modularity metrics first (registry order, then unknown names), context metrics after."""
    known = [m for m in METRICS_INFO if m in metrics]
    ordered = known + sorted(m for m in metrics if m not in METRICS_INFO)
    return sorted(ordered, key=lambda m: metric_info(str(m)).direction == 0)


def _interval(row: pd.Series, fmt: str) -> str:
    return f"{row['ci']:.0%} CI {row['ci_low']:{fmt}} to {row['ci_high']:{fmt}}"


def _certainty(row: pd.Series, n_seeds: int) -> tuple[str, bool]:
    """The certainty clause and whether the result is established."""
    level = f"{row['ci']:.0%}"
    if n_seeds < 2:
        return "with one seed there is no interval over seeds, so how sure this is cannot be stated", False
    if not np.isfinite(row["ci_low"]):
        return "the bootstrap interval is undefined (the statistic is undefined in most resamples)", False
    if row["excludes_zero"]:
        return f"the {level} interval excludes zero", True
    return f"inconclusive: the {level} interval includes zero", False


def _modularity(metric: str, direction: int, moves_up: bool, established: bool, subject: str) -> tuple[str, Verdict]:
    if direction == 0:
        return f"({metric} is context, not a modularity measure.)", "context"
    modular = "more" if moves_up == (direction > 0) else "less"
    reading = f"higher {metric} means more modular" if direction > 0 else f"lower {metric} means more modular"
    if established:
        return f"Since {reading}, {subject} {modular} modular fine-tuned models.", f"{modular} modular"  # type: ignore[return-value]
    return f"Since {reading}, the point estimate leans to {modular} modular, but that is not established.", (
        "inconclusive"
    )


def _correlation_finding(metric: str, row: pd.Series, groups: pd.DataFrame) -> Finding:
    n_units, n_seeds, rho = int(row["n_units"]), int(row["n_seeds"]), float(row["rho"])
    numbers = (rho, float(row["ci_low"]), float(row["ci_high"]), n_seeds, n_units)
    context = int(row["direction"]) == 0
    if row["note"] == "too few units":
        sentence = (
            f"{metric}: only {n_units} pretrained units, too few (fewer than 3) for a rank correlation with "
            "pretraining loss; nothing is concluded."
        )
        return Finding(metric, "correlation", sentence, *numbers, verdict="context" if context else "not assessed")
    if row["note"] == "constant":
        sentence = (
            f"{metric}: the rank correlation with pretraining loss is undefined because {metric} or the "
            f"pretraining loss is constant across the {n_units} pretrained units; nothing is concluded."
        )
        return Finding(metric, "correlation", sentence, *numbers, verdict="context" if context else "not assessed")
    band = strength(rho)
    head = f"{metric}: Spearman ρ(pretraining loss, {metric}) = {rho:+.2f} over {n_units} pretrained units from "
    head += f"{n_seeds} seed{'s' if n_seeds != 1 else ''}"
    if np.isfinite(row["ci_low"]):
        head += f" ({_interval(row, '+.2f')}, bootstrap over seeds)"
    certainty, established = _certainty(row, n_seeds)
    if rho == 0:
        trend = f"{metric} shows no monotone trend with pretraining quality"
    else:
        trend = f"better pretraining (lower loss) goes with {'higher' if rho < 0 else 'lower'} {metric}"
    sentence = f"{head}: {trend}, a {band} association (|ρ| {_band_bounds(band)}); {certainty}."
    if rho == 0:
        verdict: Verdict = "context" if context else "inconclusive"
    else:
        clause, verdict = _modularity(metric, int(row["direction"]), rho < 0, established, "better pretraining gives")
        sentence += " " + clause
    sentence += _within_groups(rho, groups)
    return Finding(metric, "correlation", sentence, *numbers, verdict=verdict, strength=band)


def _within_groups(pooled_rho: float, groups: pd.DataFrame) -> str:
    """Whether the groups agree with the pooled sign: pooling depths or corpora can create or hide a trend."""
    if len(groups) < 2 or pooled_rho == 0:
        return ""
    rho = groups["rho"].to_numpy(dtype=float)
    sure = groups["excludes_zero"].to_numpy(dtype=bool)
    same, opposite = np.sign(rho) == np.sign(pooled_rho), np.sign(rho) == -np.sign(pooled_rho)
    text = (
        f" Within the {len(groups)} depth/corpus/noise groups, {int(same.sum())} have ρ of the same sign "
        f"({int((same & sure).sum())} with intervals excluding zero) and {int(opposite.sum())} the opposite sign "
        f"({int((opposite & sure).sum())} excluding zero)"
    )
    undefined = int((~np.isfinite(rho)).sum())
    return text + (f"; {undefined} undefined." if undefined else ".")


def _band_bounds(band: str) -> str:
    return {"negligible": "< 0.1", "weak": "0.1 to 0.3", "moderate": "0.3 to 0.5", "strong": "≥ 0.5"}[band]


def _control_finding(metric: str, row: pd.Series) -> Finding:
    n_seeds, n_groups, diff = int(row["n_seeds"]), int(row["n_groups"]), float(row["difference"])
    numbers = (diff, float(row["ci_low"]), float(row["ci_high"]), n_seeds, n_groups)
    context = int(row["direction"]) == 0
    if not np.isfinite(diff):
        sentence = f"Random-init control for {metric}: there are no matching random-init (step 0) and pretrained units."
        return Finding(metric, "control", sentence, *numbers, verdict="context" if context else "not assessed")
    if n_groups == 1:
        which = (
            f"the best-pretrained checkpoint (step {int(row['best_step'])}, held-out loss {row['best_loss']:.3g}) "
            f"minus random init (step 0, loss {row['control_loss']:.3g})"
        )
    else:
        which = (
            f"averaged over {n_groups} depth/corpus/noise groups, each group's best-pretrained checkpoint "
            "(lowest held-out loss) minus its random init (step 0)"
        )
    head = f"Random-init control for {metric}: {which} = {diff:+.3g}"
    head += (
        f" ({_interval(row, '+.3g')}, {n_seeds} seeds)"
        if np.isfinite(row["ci_low"])
        else f" ({n_seeds} seed{'s' if n_seeds != 1 else ''})"
    )
    certainty, established = _certainty(row, n_seeds)
    if diff == 0:
        sentence = f"{head}: pretraining left {metric} unchanged on average; {certainty}."
        return Finding(metric, "control", sentence, *numbers, verdict="context" if context else "inconclusive")
    sentence = (
        f"{head}: pretrained models have {'higher' if diff > 0 else 'lower'} {metric} than random init; {certainty}."
    )
    clause, verdict = _modularity(metric, int(row["direction"]), diff > 0, established, "pretraining gives")
    sentence += " " + clause.replace("modular fine-tuned models.", "modular fine-tuned models than random init.")
    return Finding(metric, "control", sentence, *numbers, verdict=verdict)


def _summary(findings: list[Finding]) -> tuple[str, ...]:
    sentences = []
    for kind, subject in (
        ("correlation", "With better pretraining (lower held-out loss, among pretrained checkpoints)"),
        ("control", "Against the random-init control (best-pretrained checkpoint vs step 0)"),
    ):
        rated = [f for f in findings if f.kind == kind and f.verdict != "context"]
        if not rated:
            sentences.append(f"{subject}, no modularity metric was measured.")
            continue
        by = {v: sorted(f.metric for f in rated if f.verdict == v) for v in ("more modular", "less modular")}
        by |= {v: sorted(f.metric for f in rated if f.verdict == v) for v in ("inconclusive", "not assessed")}
        text = (
            f"{subject}, of {len(rated)} modularity metrics {len(by['more modular'])} point to more modular "
            f"fine-tuned models{_names(by['more modular'])}, {len(by['less modular'])} to less modular"
            f"{_names(by['less modular'])}, and {len(by['inconclusive'])} are inconclusive"
            f"{_names(by['inconclusive'])}"
        )
        if by["not assessed"]:
            text += f"; {len(by['not assessed'])} could not be assessed{_names(by['not assessed'])}"
        if len(by["not assessed"]) == len(rated):
            sentences.append(text + ". None could be assessed, so the data do not answer the question.")
            continue
        sentences.append(text + ". " + _overall(len(by["more modular"]), len(by["less modular"])))
    return tuple(sentences)


def _names(metrics: list[str]) -> str:
    return f" ({', '.join(metrics)})" if metrics else ""


def _overall(more: int, less: int) -> str:
    if more and not less:
        return "Every metric with an interval excluding zero points to more modularity."
    if less and not more:
        return "Every metric with an interval excluding zero points to less modularity."
    if more and less:
        return "The metrics with intervals excluding zero disagree in direction."
    return "No metric has an interval excluding zero, so the data do not answer which way."
