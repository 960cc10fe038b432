"""Reports and figure export: the only place besides the store and the CLI that writes files."""

from modlens.report.export import save_figure_html

__all__ = ["save_figure_html"]
