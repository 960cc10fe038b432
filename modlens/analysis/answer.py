"""The plain-language answer: it leads with the primary metrics; every sentence is generated from its numbers.

Only the declared primary metrics (at most three) get a verdict, from the within-run permutation test with
Holm's correction; every other metric is described (estimate, interval, raw p) and never counted.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from modlens.analysis.calibration import MODERATE_RHO, POWER_TARGET, Design, power
from modlens.analysis.correlation import WITHIN
from modlens.analysis.metrics import METRICS_INFO, metric_info
from modlens.analysis.primary import ALPHA, ESTABLISHED, NOT_ASSESSED, PRIMARY_METRICS, primary_table

QUESTION = "How much does pretraining quality affect the modularity of fine-tuned models?"
STRENGTHS = ((0.1, "negligible"), (0.3, "weak"), (0.5, "moderate"), (float("inf"), "strong"))
POWER_STUDIES = 400


@dataclass(frozen=True)
class Finding:
    """One descriptive sentence and the numbers it was generated from (no verdict).

    Attributes:
        metric: metric name.
        kind: ``"correlation"`` (within-group ρ of pretraining loss and the metric) or ``"control"``
            (best-pretrained minus random init).
        sentence: the plain-language statement.
        estimate: ρ, or the difference from random init.
        ci_low, ci_high: its interval (NaN when there is none).
        p_value: the raw permutation p-value (NaN when there is none).
        n_runs: pretraining runs behind it.
        n_units: units behind it.
    """

    metric: str
    kind: Literal["correlation", "control"]
    sentence: str
    estimate: float
    ci_low: float
    ci_high: float
    p_value: float
    n_runs: int
    n_units: int


@dataclass(frozen=True)
class Answer:
    """The study's answer.

    Attributes:
        question: the research question.
        primary: the primary table (``modlens.analysis.primary_table``): metric, estimate, interval, raw and
            Holm-adjusted p, verdict, and why a metric was not assessed.
        summary: sentences generated from the primary table (and the design's power).
        findings: descriptive sentences per metric, the correlation then the control.
        power: the design's power for a primary metric with within-group ρ = 0.5 (NaN if not computed).
        design: the design's shape, e.g. ``8 groups × 3 runs × steps 300/1000``.
    """

    question: str
    primary: pd.DataFrame
    summary: tuple[str, ...]
    findings: tuple[Finding, ...]
    power: float = float("nan")
    design: str = ""

    @property
    def sentences(self) -> list[str]:
        """The summary sentences, then every finding's sentence."""
        return [*self.summary, *(f.sentence for f in self.findings)]

    @property
    def underpowered(self) -> bool:
        """Whether the design's power at ρ = 0.5 is below 0.8 (False when it was not computed)."""
        return bool(np.isfinite(self.power) and self.power < POWER_TARGET)


def strength(rho: float) -> str:
    """The band of |ρ|: negligible (< 0.1), weak (< 0.3), moderate (< 0.5) or strong (≥ 0.5)."""
    return next(name for bound, name in STRENGTHS if abs(rho) < bound)


def design_power(frame: pd.DataFrame, *, n_studies: int = POWER_STUDIES, seed: int = 0) -> tuple[str, float]:
    """The frame's design and its power at ρ = 0.5 (NaN when ``n_studies`` is 0 or nothing is pretrained)."""
    if (frame["step"] != 0).sum() == 0:
        return "", float("nan")
    shape = Design.from_frame(frame)
    return shape.label, power(shape, MODERATE_RHO, n_studies=n_studies, seed=seed) if n_studies else float("nan")


def answer_from(
    correlations: pd.DataFrame,
    control: pd.DataFrame,
    *,
    primary_metrics: Sequence[str] = PRIMARY_METRICS,
    design: tuple[str, float] = ("", float("nan")),
    alpha: float = ALPHA,
    context: Sequence[str] = (),
) -> Answer:
    """The answer from computed ``rank_correlations`` and ``random_init_control`` frames and ``design_power``;
    ``context`` sentences (``context_sentences(frame)``) follow the primary summary."""
    table = primary_table(correlations, primary_metrics, alpha=alpha)
    corr = correlations[correlations["scope"] == WITHIN].set_index("metric")
    ctrl = control[control["scope"] == WITHIN].set_index("metric")
    findings: list[Finding] = []
    for metric in _reading_order(set(corr.index) | set(ctrl.index), list(table["metric"])):
        if metric in corr.index:
            groups = correlations[(correlations["metric"] == metric) & (correlations["scope"] != WITHIN)]
            findings.append(_correlation_finding(metric, corr.loc[metric], groups))
        if metric in ctrl.index:
            findings.append(_control_finding(metric, ctrl.loc[metric]))
    summary = _summary(table, alpha) + tuple(context) + _power_sentence(*design)
    return Answer(QUESTION, table, summary, tuple(findings), power=design[1], design=design[0])


def _reading_order(metrics: set, primary: list[str]) -> list[str]:
    """Primary metrics first, then modularity metrics (registry order, then unknown names), context last."""
    known = [m for m in METRICS_INFO if m in metrics] + sorted(str(m) for m in metrics if m not in METRICS_INFO)
    rest = sorted((m for m in known if m not in primary), key=lambda m: metric_info(m).direction == 0)
    return [m for m in primary if m in metrics] + rest


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def p_text(p: float) -> str:
    """``"= 0.031"``, ``"< 0.001"`` or ``"n/a"``, to follow a "p"."""
    return "n/a" if not np.isfinite(p) else f"= {p:.2g}" if p >= 0.001 else "< 0.001"


def _summary(table: pd.DataFrame, alpha: float) -> tuple[str, ...]:
    n = len(table)
    established = table[table["verdict"].str.startswith(ESTABLISHED)]
    assessed_no = table[table["verdict"] == "not established"]
    missing = table[table["verdict"] == NOT_ASSESSED]
    verb = "is" if len(established) == 1 else "are"
    head = f"Of the {n} primary metric{'s' if n != 1 else ''}, {len(established)} {verb} established"
    parts = [_established_clause(r) for _, r in established.iterrows()]
    sentence = head + (": " + "; ".join(parts) if parts else "")
    if len(assessed_no):
        names = ", ".join(
            f"{r['metric']} (ρ = {r['rho']:+.2f}, adjusted p {p_text(r['p_adjusted'])})"
            for _, r in assessed_no.iterrows()
        )
        sentence += f"; {len(assessed_no)} {'is' if len(assessed_no) == 1 else 'are'} not established: {names}"
    if len(missing):
        names = ", ".join(f"{r['metric']} ({r['reason']})" for _, r in missing.iterrows())
        sentence += f"; {len(missing)} could not be assessed: {names}"
    sentences = [sentence + "."]
    sentences.append(
        "ρ is the Spearman correlation of pretraining loss with the metric within each group (depth, corpus, "
        "label noise), so a negative ρ means the metric rises as pretraining gets better. A verdict needs a "
        f"Holm-adjusted within-run permutation p below {alpha:g} over the {n} primary metrics; every other metric "
        "is descriptive."
    )
    return tuple(sentences)


def _established_clause(row: pd.Series) -> str:
    rises = row["rho"] < 0
    reading = f", i.e. {row['verdict'].split(': ', 1)[1]} fine-tuned models" if row["direction"] else ""
    return (
        f"better pretraining goes with {'higher' if rises else 'lower'} {row['metric']}{reading} "
        f"(ρ = {row['rho']:+.2f}, {row['ci']:.0%} interval {row['ci_low']:+.2f} to {row['ci_high']:+.2f}, "
        f"Holm-adjusted p {p_text(row['p_adjusted'])})"
    )


def _power_sentence(label: str, value: float) -> tuple[str, ...]:
    if not np.isfinite(value):
        return ()
    if value < POWER_TARGET:
        return (
            f"This design ({label}) is underpowered: a primary metric with a moderate within-group ρ of "
            f"{MODERATE_RHO} would be established in only {value:.0%} of simulated studies like it (the usual "
            f'target is {POWER_TARGET:.0%}), so "not established" here is not evidence of no effect.',
        )
    return (
        f"This design ({label}) would establish a primary metric with a moderate within-group ρ of {MODERATE_RHO} "
        f"in {value:.0%} of simulated studies like it.",
    )


def _correlation_finding(metric: str, row: pd.Series, groups: pd.DataFrame) -> Finding:
    numbers = (float(row["rho"]), float(row["ci_low"]), float(row["ci_high"]), float(row["p_value"]))
    numbers_n = (int(row["n_runs"]), int(row["n_units"]))
    excluded = f" ({int(row['n_excluded'])} pretrained units excluded: no value)" if row["n_excluded"] else ""
    if not np.isfinite(row["rho"]):
        reason = {
            "no values": "no pretrained unit has a value",
            "too few units": "no group has 3 or more pretrained units",
            "constant": f"{metric} or the pretraining loss is constant within every group",
        }.get(str(row["note"]), str(row["note"]))
        sentence = f"{metric}: no rank correlation with pretraining loss, since {reason}{excluded}."
        return Finding(metric, "correlation", sentence, *numbers, *numbers_n)
    rho = numbers[0]
    sentence = (
        f"{metric}: within-group Spearman ρ(pretraining loss, {metric}) = {rho:+.2f} over {int(row['n_units'])} "
        f"pretrained units of {int(row['n_runs'])} runs in {plural(int(row['n_groups']), 'group')}"
        f"{excluded} ({row['ci']:.0%} interval {row['ci_low']:+.2f} to {row['ci_high']:+.2f}; within-run permutation "
        f"p {p_text(row['p_value'])}): "
    )
    if rho == 0:
        sentence += f"{metric} shows no monotone trend with pretraining quality"
    else:
        sentence += (
            f"better pretraining goes with {'higher' if rho < 0 else 'lower'} {metric}, a {strength(rho)} association"
        )
    direction = metric_info(metric).direction
    if direction:
        sentence += f" (higher {metric} means {'more' if direction > 0 else 'less'} modular)"
    sentence += "."
    if len(groups) > 1:
        per = ", ".join(f"{r['rho']:+.2f}" if np.isfinite(r["rho"]) else "undefined" for _, r in groups.iterrows())
        sentence += f" Per group: {per}; pooled across groups (summary only): {row['pooled_rho']:+.2f}."
    return Finding(metric, "correlation", sentence, *numbers, *numbers_n)


def _control_finding(metric: str, row: pd.Series) -> Finding:
    diff = float(row["difference"])
    numbers = (diff, float(row["ci_low"]), float(row["ci_high"]), float(row["p_value"]))
    numbers_n = (int(row["n_runs"]), int(row["n_runs"]) * 2)
    if not np.isfinite(diff):
        sentence = (
            f"Random-init control for {metric}: there are no runs measured both at random init (step 0) and pretrained."
        )
        return Finding(metric, "control", sentence, *numbers, *numbers_n)
    if row["n_groups"] == 1 and np.isfinite(row["best_step"]):
        which = (
            f"the best-pretrained checkpoint (step {int(row['best_step'])}, held-out loss {row['best_loss']:.3g}) "
            f"minus random init (step 0, loss {row['control_loss']:.3g})"
        )
    else:
        which = (
            f"averaged over {int(row['n_groups'])} groups, each group's best-pretrained checkpoint minus its "
            "random init"
        )
    sentence = (
        f"Random-init control for {metric}: {which}, paired within {int(row['n_runs'])} runs, = {diff:+.3g} "
        f"({row['ci']:.0%} interval {row['ci_low']:+.3g} to {row['ci_high']:+.3g}; "
        f"sign-flip p {p_text(row['p_value'])}): "
    )
    sentence += (
        f"pretrained models have {'higher' if diff > 0 else 'lower'} {metric} than random init."
        if diff
        else f"pretraining left {metric} unchanged on average."
    )
    return Finding(metric, "control", sentence, *numbers, *numbers_n)
