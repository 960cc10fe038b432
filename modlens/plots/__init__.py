"""Figure builders: each takes a tidy DataFrame and returns a ``plotly.graph_objects.Figure``."""

from modlens.plots.style import PALETTE, TEMPLATE

__all__ = ["PALETTE", "TEMPLATE"]
