"""Reports and figure export: the only place besides the store and the CLI that writes files."""

from modlens.report.export import save_figure_html
from modlens.report.page import figures_page, save_figures_page
from modlens.report.static import find_chromium, save_figure

__all__ = ["figures_page", "find_chromium", "save_figure", "save_figure_html", "save_figures_page"]
