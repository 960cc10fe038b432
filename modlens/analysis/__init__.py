"""Statistical analysis of the study: per-level summaries, rank correlations, the random-init control and
the plain-language answer, each with bootstrap intervals over seeds.

The input is the study frame: one row per (unit, metric[, subroutine]) with ``depth``, ``seed``,
``label_noise``, ``corpus``, ``step`` (0 = random init), ``pretrain_loss`` (held-out loss of the base
checkpoint: lower is better pretraining), ``pretrain_accuracy``, ``metric``, ``value`` and ``subroutine``.
"""

from modlens.analysis.answer import QUESTION, Answer, Finding, answer, answer_from, strength
from modlens.analysis.bootstrap import summarize_levels
from modlens.analysis.control import random_init_control
from modlens.analysis.correlation import rank_correlations, spearman, weighted_spearman
from modlens.analysis.metrics import METRICS_INFO, MetricInfo, metric_info
from modlens.analysis.synthetic import synthetic_study_frame
from modlens.analysis.units import unit_values

__all__ = [
    "METRICS_INFO",
    "QUESTION",
    "Answer",
    "Finding",
    "MetricInfo",
    "answer",
    "answer_from",
    "metric_info",
    "random_init_control",
    "rank_correlations",
    "spearman",
    "strength",
    "summarize_levels",
    "synthetic_study_frame",
    "unit_values",
    "weighted_spearman",
]
