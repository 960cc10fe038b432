"""Fine-tuning method as a second factor: the study's rows split by method, the headline analysis run per method,
and paired contrasts between methods at the most-pretrained checkpoints.

Each (pretraining run, step, method) is one fine-tune of one base checkpoint, so the methods' rows at one
checkpoint are paired. Pooling them in one analysis would count a base checkpoint once per method
(pseudo-replication): every analysis here runs on one method's rows, and methods meet only in paired contrasts.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from modlens.analysis.answer import Answer, p_text, plural
from modlens.analysis.correlation import N_PERM, check_test
from modlens.analysis.frame import CONTROL_STEP, group_columns, run_level_values, unit_values
from modlens.analysis.permutation import normal_interval, rng_for, sign_flip_test
from modlens.analysis.primary import ALPHA, ESTABLISHED, NOT_ASSESSED, holm
from modlens.names import FINETUNE_METHODS, FIXED_BUDGET

METHOD = "method"  # the column naming a row's fine-tuning method (absent in stores written before methods)
REASON = "reason"  # why a row has no value (e.g. proxy-tuning leaves the weights untouched)
REFERENCE = "full"  # the method the headline analysis uses, and every contrast's reference
NO_REASON = "no value recorded"


@dataclass(frozen=True)
class MethodAnalysis:
    """The study per fine-tuning method, and each method against the reference at the most-pretrained level.

    Attributes:
        headline: the method whose rows the headline analysis uses (``"full"`` when present).
        per_method: one row per method and primary metric: the method's own primary table (``method``,
            ``metric``, ``rho``, ``ci_low``, ``ci_high``, ``p_value``, ``p_adjusted``, ``verdict``, ``reason``,
            ``n_units``, ``n_runs``, ``n_excluded``, ``ci``); a metric the method does not measure says
            ``absent: <reason>``.
        contrast: ``method_contrast`` (one row per primary metric and non-reference method).
        absent: ``absent_metrics``: metrics a method has no value for, with the reason.
        sentences: plain-language statements generated from the three tables.
    """

    headline: str
    per_method: pd.DataFrame
    contrast: pd.DataFrame
    absent: pd.DataFrame
    sentences: tuple[str, ...]


def methods_in(frame: pd.DataFrame) -> tuple[str, ...]:
    """The frame's fine-tuning methods, in ``FINETUNE_METHODS`` order (unknown names after, sorted); a frame
    without a ``method`` column, or a row without a method, is ``"full"``."""
    if METHOD not in frame.columns:
        return (REFERENCE,)
    present = set(frame[METHOD].fillna(REFERENCE).astype(str))
    return tuple(m for m in FINETUNE_METHODS if m in present) + tuple(sorted(present - set(FINETUNE_METHODS)))


def headline_method(methods: Sequence[str]) -> str:
    """``"full"`` when it is among ``methods``, else the first."""
    return REFERENCE if REFERENCE in methods else methods[0]


def method_rows(frame: pd.DataFrame, method: str) -> pd.DataFrame:
    """The rows of one method (all of them when the frame has no ``method`` column and ``method`` is ``"full"``)."""
    if METHOD not in frame.columns:
        return frame if method == REFERENCE else frame.iloc[0:0]
    return frame[frame[METHOD].fillna(REFERENCE).astype(str) == method]


def absent_metrics(frame: pd.DataFrame) -> pd.DataFrame:
    """Metrics a method reports on no unit at all (every row NaN), with the rows' stated reason.

    Returns:
        Columns ``method``, ``metric``, ``reason`` (the distinct non-empty ``reason`` values joined by "; ", else
        ``"no value recorded"``) and ``n_rows``.
    """
    rows = []
    for method in methods_in(frame):
        part = method_rows(frame, method)
        for metric, sub in part.groupby("metric", sort=True):
            if sub["value"].notna().any():
                continue
            rows.append({"method": method, "metric": metric, "reason": stated_reason(sub), "n_rows": len(sub)})
    return pd.DataFrame(rows, columns=["method", "metric", "reason", "n_rows"])


def stated_reason(rows: pd.DataFrame) -> str:
    """The distinct non-empty ``reason`` values of ``rows`` joined by "; ", else ``"no value recorded"``."""
    found = rows[REASON].dropna().astype(str).str.strip() if REASON in rows.columns else pd.Series([], dtype=str)
    return "; ".join(dict.fromkeys(r for r in found if r)) or NO_REASON


def best_steps(frame: pd.DataFrame) -> pd.Series:
    """The most-pretrained level of each group: its highest step (over all methods and metrics)."""
    groups = group_columns(frame)
    if not groups:
        return pd.Series([frame["step"].max()], name="step")
    return frame.groupby(groups, sort=True)["step"].max()


def method_contrast(
    frame: pd.DataFrame,
    metrics: Sequence[str],
    *,
    reference: str = REFERENCE,
    n_perm: int = N_PERM,
    ci: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """Each method minus the reference at the most-pretrained level, paired within pretraining runs.

    For each metric and method ``m`` other than ``reference``: per pretraining run (group, seed), the value of
    ``m`` minus that of ``reference`` at the group's highest step (both fine-tunes of the same base checkpoint,
    subroutines and units averaged first); the estimate is the mean over runs. Under "no difference between
    the methods" each run's difference is symmetric about zero, so the sign-flip test (exact when all
    ``2^runs`` patterns fit in ``n_perm``) holds its level with any number of runs; with ``n`` runs its
    smallest attainable p is ``2 / 2^n`` (``min_p``), so fewer than six runs can never reach 0.05. The interval
    is ``difference ± z · se`` with the sign-flip null standard error (as the random-init control; it errs wide
    under an effect). Holm's correction runs over the contrasts of one metric (one family per metric, as each
    metric asks its own question "does the method change this metric?"); an absent contrast counts as p = 1, so
    a method that cannot be measured does not loosen the others' correction.

    Args:
        frame: the study frame with a ``method`` column.
        metrics: the metrics contrasted (usually the primary ones).
        reference: the method every other is compared with.
        n_perm, ci, seed: as in ``random_init_control``.

    Returns:
        One row per metric and method: ``metric``, ``method``, ``reference``, ``best_step`` (the groups'
        highest steps, e.g. ``"3000"``), ``n_runs``, ``reference_mean``, ``method_mean``, ``difference``,
        ``se``, ``ci_low``, ``ci_high``, ``p_value``, ``p_adjusted``, ``min_p`` and ``min_p_adjusted`` (the
        smallest p and Holm-adjusted p the runs allow), ``exact``, ``note`` (``""``,
        ``"absent: <reason>"``, ``"absent for <reference>: <reason>"``, ``"no paired runs"``), ``ci``.
    """
    check_test(n_perm, ci)
    groups = group_columns(frame)
    best = best_steps(frame)
    best_label = "/".join(str(int(s)) for s in sorted(set(best)))
    absent = absent_metrics(frame).set_index(["method", "metric"])["reason"]
    at_best = {m: _at_best(method_rows(frame, m), groups, best) for m in methods_in(frame)}
    rows = []
    for metric in metrics:
        block = []
        for method in (m for m in methods_in(frame) if m != reference):
            row: dict[str, Any] = {"metric": metric, "method": method, "reference": reference, "best_step": best_label}
            row |= {k: np.nan for k in (*_NUMBERS, "min_p")} | {"n_runs": 0, "exact": False, "ci": ci}
            note = _absence(absent, method, metric, reference)
            if not note and reference in at_best and (best > CONTROL_STEP).any():
                ours, theirs = (_metric_runs(at_best[m], metric) for m in (method, reference))
                row |= {"method_mean": ours.mean(), "reference_mean": theirs.mean()}
                paired = ours.index.intersection(theirs.index)
                diffs = (ours[paired] - theirs[paired]).to_numpy(dtype=float)
                if diffs.size:
                    row |= _sign_flip(diffs, ci, n_perm, rng_for(seed, "method contrast", metric, method))
                else:
                    note = "no paired runs"
            elif not note:
                note = f"no {reference} fine-tunes" if reference not in at_best else "no pretrained level"
            block.append(row | {"note": note})
        if block:
            adjusted = holm(np.array([r["p_value"] for r in block], dtype=float))
            for row, p_adj in zip(block, adjusted, strict=True):
                row["p_adjusted"] = p_adj if np.isfinite(row["p_value"]) else np.nan
                smallest = min(1.0, row["min_p"] * len(block))  # Holm's first step, at best
                row["min_p_adjusted"] = smallest if np.isfinite(row["min_p"]) else np.nan
        rows += block
    columns = ["metric", "method", "reference", "best_step", "n_runs", *_NUMBERS, "min_p", "min_p_adjusted"]
    columns += ["exact", "note", "ci"]
    return pd.DataFrame(rows, columns=columns)


_NUMBERS = ("reference_mean", "method_mean", "difference", "se", "ci_low", "ci_high", "p_value", "p_adjusted")


def _absence(absent: pd.Series, method: str, metric: str, reference: str) -> str:
    if (method, metric) in absent.index:
        return f"absent: {absent[(method, metric)]}"
    if (reference, metric) in absent.index:
        return f"absent for {reference}: {absent[(reference, metric)]}"
    return ""


def _at_best(rows: pd.DataFrame, groups: list[str], best: pd.Series) -> pd.DataFrame:
    """One value per run and metric at its group's highest step (step > 0), indexed by group columns and seed."""
    per_run = run_level_values(unit_values(rows), groups)
    if groups:
        top = best.rename("best_step").reset_index()
        per_run = per_run.merge(top, on=groups, how="inner")
    else:
        per_run = per_run.assign(best_step=best.iloc[0])
    chosen = per_run[(per_run["step"] == per_run["best_step"]) & (per_run["step"] != CONTROL_STEP)]
    return chosen.set_index([*groups, "seed"])


def _metric_runs(at_best: pd.DataFrame, metric: str) -> pd.Series:
    return at_best.loc[at_best["metric"] == metric, "value"].astype(float)


def _sign_flip(diffs: np.ndarray, ci: float, n_perm: int, rng: np.random.Generator) -> dict[str, Any]:
    test = sign_flip_test(diffs[None, :], np.full(diffs.size, 1 / diffs.size), n_perm=n_perm, rng=rng)
    low, high = normal_interval(test.estimate, test.se, ci)
    out = {"difference": float(test.estimate[0]), "se": float(test.se[0]), "p_value": float(test.p_value[0])}
    out |= {"ci_low": float(low[0]), "ci_high": float(high[0]), "exact": test.exact, "n_runs": diffs.size}
    return out | {"min_p": 2.0 / 2**diffs.size if test.exact else 1.0 / (test.n_permutations + 1)}


def per_method_table(answers: Mapping[str, Answer], absent: pd.DataFrame) -> pd.DataFrame:
    """Each method's primary table stacked, a metric the method has no value for marked ``absent: <reason>``."""
    reasons = absent.set_index(["method", "metric"])["reason"]
    columns = ["metric", "rho", "ci_low", "ci_high", "p_value", "p_adjusted", "verdict", "reason"]
    parts = []
    for method, answer in answers.items():
        part = answer.primary[[*columns, "n_units", "n_runs", "n_excluded", "ci"]].copy()
        part.insert(0, "method", method)
        gone = [(method, m) in reasons.index for m in part["metric"]]
        part.loc[gone, "reason"] = [f"absent: {reasons[(method, m)]}" for m in part.loc[gone, "metric"]]
        part.loc[gone, "verdict"] = NOT_ASSESSED
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def method_analysis(
    frame: pd.DataFrame,
    answers: Mapping[str, Answer],
    *,
    primary_metrics: Sequence[str],
    n_perm: int = N_PERM,
    ci: float = 0.95,
    seed: int = 0,
    alpha: float = ALPHA,
) -> MethodAnalysis:
    """The per-method tables and sentences from each method's answer (``analyse_study`` on its rows).

    Each method's primary metrics are Holm-corrected within that method's analysis, as the headline's are: the
    per-method analyses answer the headline question once per method and are read one method at a time; the
    verdict that answers the study remains the headline method's.

    Args:
        frame: the study frame with a ``method`` column.
        answers: each method's answer, in ``methods_in`` order.
        primary_metrics: the metrics contrasted between methods.
        n_perm, ci, seed: the contrasts' sign-flip tests.
        alpha: level of the contrasts' Holm-adjusted p.
    """
    methods = tuple(answers)
    absent = absent_metrics(frame)
    per_method = per_method_table(answers, absent)
    reference = headline_method(methods)
    contrasted = contrast_metrics(frame, primary_metrics)
    contrast = method_contrast(frame, contrasted, reference=reference, n_perm=n_perm, ci=ci, seed=seed)
    sentences = (
        _headline_sentence(methods, reference),
        *(_method_sentence(m, per_method[per_method["method"] == m]) for m in methods),
        *_untrained_sentence(frame, reference),
        *(_contrast_sentence(r, alpha) for _, r in contrast.iterrows()),
        *(f"Absent for {m}: {why}." for m, why in _reasons(absent).items()),
    )
    return MethodAnalysis(reference, per_method, contrast, absent, tuple(sentences))


def contrast_metrics(frame: pd.DataFrame, primary_metrics: Sequence[str]) -> list[str]:
    """The primary metrics, then the fixed-budget twins of those that have one in ``frame``: at the most-pretrained
    checkpoints a base often meets the target untrained, and only the fixed budget then tells methods apart."""
    present = set(frame["metric"])
    twins = [f"{m}{FIXED_BUDGET}" for m in primary_metrics if f"{m}{FIXED_BUDGET}" in present]
    return [*primary_metrics, *(t for t in twins if t not in primary_metrics)]


def _untrained_sentence(frame: pd.DataFrame, reference: str) -> tuple[str, ...]:
    """How many of the reference's most-pretrained checkpoints met the target before any step (then every method
    returns the base itself on the stop-at-target arm, and those contrasts are zero by construction)."""
    steps = frame[(frame["metric"] == "finetune_steps") & frame["value"].notna()]
    at_best = _at_best(method_rows(steps, reference), group_columns(frame), best_steps(frame))
    if at_best.empty:
        return ()
    untrained = int((at_best["value"] == 0).sum())
    if not untrained:
        return ()
    return (
        f"At the most-pretrained checkpoints {untrained} of {len(at_best)} bases already met the fine-tuning target "
        "before any step, so every method returned the base itself on the stop-at-target arm there (a difference "
        "of exactly 0); the fixed-budget metrics, where every checkpoint is tuned for the same steps, are the "
        "contrasts that can tell the methods apart.",
    )


def _reasons(absent: pd.DataFrame) -> dict[str, str]:
    """One reason per method that has absent metrics (the reasons it gives, joined)."""
    return {m: "; ".join(dict.fromkeys(rows["reason"])) for m, rows in absent.groupby("method", sort=False)}


def _headline_sentence(methods: Sequence[str], headline: str) -> str:
    return (
        f"The study fine-tuned with {len(methods)} methods ({', '.join(methods)}). The answer above "
        f"uses the {headline} fine-tunes only: the methods' fine-tunes share their base checkpoints, so pooling them "
        "would count each checkpoint once per method. Each method is analysed the same way on its own rows, and "
        f"compared with {headline} run by run at the most-pretrained checkpoints."
    )


def _method_sentence(method: str, table: pd.DataFrame) -> str:
    established = table[table["verdict"].str.startswith(ESTABLISHED)]
    missing = table[table["verdict"] == NOT_ASSESSED]
    verb = "is" if len(established) == 1 else "are"
    text = f"{method}: of the {len(table)} primary metrics, {len(established)} {verb} established"
    if len(established):
        text += ": " + "; ".join(
            f"{r['metric']}, {_reading(r['verdict'])} (ρ = {r['rho']:+.2f}, adjusted p {p_text(r['p_adjusted'])})"
            for _, r in established.iterrows()
        )
    if len(missing):
        names = ", ".join(f"{r['metric']} ({absence_mark(r['reason'])})" for _, r in missing.iterrows())
        text += f"; {len(missing)} not assessed: {names}"
    return text + "."


def absence_mark(note: str) -> str:
    """An absence note without its reason (``"absent"``, ``"absent for full"``), for tables and sentences that
    state each reason once elsewhere; other notes unchanged."""
    return note.split(":", 1)[0] if note.startswith("absent") else note


def _reading(verdict: str) -> str:
    """``"established: more modular"`` -> ``"more modular with better pretraining"``."""
    tail = verdict.split(": ", 1)[1]
    return tail if "pretraining" in tail else f"{tail} with better pretraining"


def _contrast_sentence(row: pd.Series, alpha: float) -> str:
    method, reference, metric = row["method"], row["reference"], row["metric"]
    if row["note"]:
        return f"{metric}, {method} against {reference}: not compared ({absence_mark(row['note'])})."
    diff = float(row["difference"])
    runs = plural(int(row["n_runs"]), "run")
    text = (
        f"{metric}, {method} minus {reference} at the most-pretrained checkpoints (step {row['best_step']}), paired "
        f"within {runs}: {diff:+.3g} ({row['ci']:.0%} interval {row['ci_low']:+.3g} to "
        f"{row['ci_high']:+.3g}; sign-flip p {p_text(row['p_value'])}, Holm-adjusted p {p_text(row['p_adjusted'])}): "
    )
    if row["p_adjusted"] < alpha and diff:
        text += f"{method} gives {'higher' if diff > 0 else 'lower'} {metric} than {reference}."
    else:
        text += f"no difference from {reference} is established."
    if row["min_p_adjusted"] >= alpha:
        text += (
            f" With {runs} no Holm-adjusted sign-flip p can fall below {row['min_p_adjusted']:.2g}, "
            f"so this design cannot establish a difference at {alpha:g}."
        )
    return text
