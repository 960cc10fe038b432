"""Reports and figure export: the only place besides the store and the CLI that writes files."""

from modlens.report.export import save_figure_html
from modlens.report.page import figures_page, save_figures_page
from modlens.report.static import find_chromium, save_figure, save_figures
from modlens.report.study_files import (
    StudyData,
    StudyReportFiles,
    drift_figures,
    load_study,
    mask_figures,
    write_study_report,
)
from modlens.report.study_report import StudyAnalysis, analyse_study, build_study_report, render_study_report

__all__ = [
    "StudyAnalysis",
    "StudyData",
    "StudyReportFiles",
    "analyse_study",
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
    "write_study_report",
]
