"""Statistical analysis of the study: within-group rank correlations tested by within-run permutation,
Holm-corrected verdicts for at most three primary metrics, the random-init control, per-level summaries,
the calibration and power of a design, the plain-language answer, and the per-layer tables averaged for
figures. ``analyse_study`` computes everything the study's report shows.

The input is the study frame: one row per (unit, metric[, subroutine]) with ``depth``, ``seed``,
``label_noise``, ``corpus``, ``step`` (0 = random init), ``pretrain_loss`` (held-out loss of the base
checkpoint: lower is better pretraining), ``pretrain_accuracy``, ``metric``, ``value`` and ``subroutine``; with
several fine-tuning methods also ``method`` (absent means ``"full"``) and ``reason`` (why a row has no value).
"""

from modlens.analysis.answer import QUESTION, Answer, Finding, answer_from, design_power, strength
from modlens.analysis.calibration import Calibration, Design, calibrate, calibration_table, power, underpowered
from modlens.analysis.control import random_init_control
from modlens.analysis.correlation import WITHIN, rank_correlations
from modlens.analysis.frame import excluded_units, unit_values
from modlens.analysis.layers import drift_by_layer, mask_density_by_layer
from modlens.analysis.levels import checkpoint_counts, summarize_levels
from modlens.analysis.methods import MethodAnalysis, absent_metrics, method_contrast, methods_in
from modlens.analysis.metrics import METRICS_INFO, MetricInfo, metric_info
from modlens.analysis.permutation import PermutationTest, sign_flip_test, within_run_test
from modlens.analysis.primary import PRIMARY_METRICS, check_primary, holm, primary_table
from modlens.analysis.ranks import spearman, within_group_rho
from modlens.analysis.study import StudyAnalysis, analyse_study
from modlens.analysis.synthetic import synthetic_study_frame

__all__ = [
    "METRICS_INFO",
    "PRIMARY_METRICS",
    "QUESTION",
    "WITHIN",
    "Answer",
    "Calibration",
    "Design",
    "Finding",
    "MethodAnalysis",
    "MetricInfo",
    "PermutationTest",
    "StudyAnalysis",
    "absent_metrics",
    "analyse_study",
    "answer_from",
    "calibrate",
    "calibration_table",
    "check_primary",
    "checkpoint_counts",
    "design_power",
    "drift_by_layer",
    "excluded_units",
    "holm",
    "mask_density_by_layer",
    "method_contrast",
    "methods_in",
    "metric_info",
    "power",
    "primary_table",
    "random_init_control",
    "rank_correlations",
    "sign_flip_test",
    "spearman",
    "strength",
    "summarize_levels",
    "synthetic_study_frame",
    "underpowered",
    "unit_values",
    "within_group_rho",
    "within_run_test",
]
