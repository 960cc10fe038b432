"""The one plotly template and palette modlens figures use, passed explicitly (never set globally)."""

import plotly.graph_objects as go

# Okabe-Ito: distinguishable under the common colour-vision deficiencies.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
SEQUENTIAL = "Viridis"  # perceptually uniform, colour-blind safe
DIVERGING = "RdBu"

TEMPLATE = go.layout.Template(
    layout=go.Layout(
        font={"family": "Helvetica, Arial, sans-serif", "size": 13},
        colorway=list(PALETTE),
        plot_bgcolor="white",
        paper_bgcolor="white",
        xaxis={"showgrid": True, "gridcolor": "#e5e5e5", "zeroline": False, "linecolor": "#444"},
        yaxis={"showgrid": True, "gridcolor": "#e5e5e5", "zeroline": False, "linecolor": "#444"},
        margin={"l": 70, "r": 30, "t": 60, "b": 60},
    )
)
