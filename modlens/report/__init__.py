"""Reports and figure export: the only place besides the store and the CLI that writes files. Rendering only;
the study's statistics are computed by ``modlens.analysis`` (``analyse_study``)."""

from modlens.report.export import save_figure_html
from modlens.report.page import figures_page, save_figures_page
from modlens.report.static import find_chromium, save_figure, save_figures
from modlens.report.study_figures import ReportFigure, drift_figures, mask_figures, study_figures
from modlens.report.study_files import STATIC_FIGURES, StudyData, StudyReportFiles, load_study, write_study_report
from modlens.report.study_report import build_study_report, render_study_report

__all__ = [
    "STATIC_FIGURES",
    "ReportFigure",
    "StudyData",
    "StudyReportFiles",
    "build_study_report",
    "drift_figures",
    "figures_page",
    "find_chromium",
    "load_study",
    "mask_figures",
    "render_study_report",
    "save_figure",
    "save_figure_html",
    "save_figures",
    "save_figures_page",
    "study_figures",
    "write_study_report",
]
