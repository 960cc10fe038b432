"""Ablation heatmaps are built from sweep frames: one heatmap trace, layers down, heads across."""

import pandas as pd
import plotly.graph_objects as go
import pytest

from modlens.ablation.sweep import sweep_frame
from modlens.components import parse_components
from modlens.plots.ablation import plot_ablation_heatmap


@pytest.fixture
def frame() -> pd.DataFrame:
    comps = parse_components(["L0H0", "L0H1", "L1H0", "L1H1", "L0.mlp", "L1.attn", "L1N4"])
    return sweep_frame(comps, 1.0, [1.5, 0.9, 2.0, 1.0, 3.0, 1.2, 1.1], replacement="mean", metric="loss")


def test_head_heatmap(frame: pd.DataFrame) -> None:
    fig = plot_ablation_heatmap(frame)
    assert isinstance(fig, go.Figure) and len(fig.data) == 1
    heat = fig.data[0]
    assert isinstance(heat, go.Heatmap)
    assert heat.z.shape == (2, 2) and heat.z[1][0] == pytest.approx(1.0) and heat.z[0][1] == pytest.approx(-0.1)
    assert list(heat.y) == [0, 1] and list(heat.x) == ["0", "1"]
    assert heat.text[0][1] == "L0H1"
    assert fig.layout.xaxis.type == "category"  # integer head labels, no half-head ticks
    assert fig.layout.xaxis.title.text == "head" and fig.layout.yaxis.title.text == "layer"
    assert "mean ablation" in fig.layout.title.text and heat.zmid == 0.0
    assert heat.zmin == -heat.zmax == pytest.approx(-1.0)  # symmetric around 0: the largest |change|
    assert heat.colorbar.title.text == "change in loss on the answer tokens (nats/token)"


def test_layer_and_neuron_heatmaps(frame: pd.DataFrame) -> None:
    layers = plot_ablation_heatmap(frame, kind="layer", title="parts")
    assert list(layers.data[0].x) == ["attn", "mlp"] and layers.layout.title.text == "parts"
    neurons = plot_ablation_heatmap(frame, kind="neuron")
    assert list(neurons.data[0].x) == ["4"] and list(neurons.data[0].y) == [1]


def test_missing_rows_or_columns_raise(frame: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="no neuron rows"):
        plot_ablation_heatmap(frame[frame["kind"] == "head"], kind="neuron")
    with pytest.raises(ValueError, match="no column 'delta'"):
        plot_ablation_heatmap(frame, value="delta")
