"""Mask figures: built from tidy frames, returned as figures (asserted on the figure object)."""

import pandas as pd
import plotly.graph_objects as go

from modlens.components import parse_components
from modlens.masks import Mask
from modlens.models import ModelSpec
from modlens.plots.masks import plot_mask_density, plot_modularity_scores

SPEC = ModelSpec(
    architecture="GPT2LMHeadModel", n_layers=3, n_heads=2, n_kv_heads=2, d_model=8, d_head=4, d_mlp=4,
    d_vocab=10, n_ctx=8,
)  # fmt: skip


def test_density_figure_has_one_bar_trace_per_group_and_mask():
    a = Mask.from_components(parse_components(["L0H0", "L2N1"], SPEC), SPEC).density_by_layer()
    fig = plot_mask_density(a)
    assert isinstance(fig, go.Figure) and [t.type for t in fig.data] == ["bar", "bar"]
    assert fig.layout.xaxis.title.text == "layer" and fig.layout.yaxis.title.text == "kept fraction of units"
    heads = next(t for t in fig.data if t.name == "head")
    assert list(heads.y) == [0.5, 0.0, 0.0]
    both = pd.concat([a.assign(mask="A"), a.assign(mask="B")])
    assert len(plot_mask_density(both).data) == 4


def test_scores_figure_has_box_per_score():
    frame = pd.DataFrame(
        {
            "subroutine": ["A", "A", "B", "B"],
            "seed": [0, 0, 0, 0],
            "metric": ["subnetwork_score", "ablation_score"] * 2,
            "evaluated_on": ["B", "B", "A", "A"],
            "value": [0.8, -0.7, 0.6, -0.5],
        }
    )
    fig = plot_modularity_scores(frame)
    assert [t.type for t in fig.data] == ["box", "box"] and list(fig.data[1].y) == [-0.7, -0.5]
