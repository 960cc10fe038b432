"""Everything the study's report shows, computed once from the study frame: per-level summaries, within-group
correlations, the random-init control, the design's power, the answer and the per-level counts; with several
fine-tuning methods, the headline on one method's rows and the same analysis per method."""

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from modlens.analysis.answer import POWER_STUDIES, Answer, answer_from, design_power
from modlens.analysis.context import context_sentences
from modlens.analysis.control import random_init_control
from modlens.analysis.correlation import N_PERM, rank_correlations
from modlens.analysis.levels import checkpoint_counts, summarize_levels
from modlens.analysis.methods import MethodAnalysis, headline_method, method_analysis, method_rows, methods_in
from modlens.analysis.primary import PRIMARY_METRICS
from modlens.errors import ModlensError


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
        method: the fine-tuning method whose rows every table above comes from.
        methods: the per-method analysis and the contrasts between methods (None with one method).
    """

    summary: pd.DataFrame
    correlations: pd.DataFrame
    control: pd.DataFrame
    answer: Answer
    counts: pd.DataFrame
    n_perm: int = N_PERM
    seed: int = 0
    method: str = "full"
    methods: MethodAnalysis | None = None


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

    All of them come from one fine-tuning method's rows (``"full"`` when present, else the frame's first method;
    a frame without a ``method`` column is all ``"full"``). With several methods, ``methods`` holds the same
    analysis per method and the paired contrasts between methods (``modlens.analysis.methods``).

    Args:
        frame: the study frame.
        primary_metrics: the one to three metrics that get a verdict.
        n_perm: permutations per test.
        ci: interval coverage.
        seed: seed of the permutations and of the power simulation.
        power_studies: simulated studies for the design's power (0: not computed).
        n_boot: former name of ``n_perm`` (there is no bootstrap any more), used when given.

    Raises:
        ModlensError: the frame is empty (no fine-tuned checkpoint measured yet).
    """
    if frame.empty:
        raise ModlensError("the study frame is empty: no fine-tuned checkpoint has been measured yet")
    n_perm = n_boot if n_boot is not None else n_perm
    methods = methods_in(frame)
    headline = headline_method(methods)
    rows = method_rows(frame, headline)
    analysis = _analyse_rows(
        rows,
        primary_metrics=primary_metrics,
        n_perm=n_perm,
        ci=ci,
        seed=seed,
        design=design_power(rows, n_studies=power_studies, seed=seed),
    )
    analysis = dataclasses.replace(analysis, method=headline)
    if len(methods) == 1:
        return analysis
    # The methods share one design (paired fine-tunes of the same checkpoints): its power is stated once, above.
    shared = (analysis.answer.design, float("nan"))
    answers = {
        m: analysis.answer
        if m == headline
        else _analyse_rows(
            method_rows(frame, m), primary_metrics=primary_metrics, n_perm=n_perm, ci=ci, seed=seed, design=shared
        ).answer
        for m in methods
    }
    found = method_analysis(frame, answers, primary_metrics=primary_metrics, n_perm=n_perm, ci=ci, seed=seed)
    return dataclasses.replace(analysis, methods=found)


def _analyse_rows(
    frame: pd.DataFrame,
    *,
    primary_metrics: Sequence[str],
    n_perm: int,
    ci: float,
    seed: int,
    design: tuple[str, float],
) -> StudyAnalysis:
    """The analysis of one method's rows."""
    correlations = rank_correlations(frame, n_perm=n_perm, ci=ci, seed=seed)
    control = random_init_control(frame, n_perm=n_perm, ci=ci, seed=seed)
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
