"""Drift figures: built from small hand-made frames; assertions on the figure objects."""

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from modlens.errors import ModlensError
from modlens.plots.drift import (
    LAYER_AXIS,
    plot_cka_by_layer,
    plot_drift_by_depth,
    plot_spectral_split,
    plot_weight_drift_heatmap,
)
from modlens.plots.style import TEMPLATE


@pytest.fixture(scope="module")
def weights() -> pd.DataFrame:
    rows = []
    for layer in range(4):
        for matrix in ("W_Q", "W_out", "W_in"):
            rows.append(
                {"layer": layer, "matrix": matrix, "head": None, "rel_change": 0.1 * layer, "cosine": 1 - 0.01 * layer}
                | {"sv_share": 0.25, "angle_in": 2.0 * layer, "angle_out": 1.0 * layer}
            )
        rows.append(rows[-3] | {"head": 0})
    rows.append({"layer": None, "matrix": "W_E", "head": None, "rel_change": 5.0, "sv_share": 0.1})
    frame = pd.DataFrame(rows)
    frame["layer"] = frame["layer"].astype("Int64")
    frame["head"] = frame["head"].astype("Int64")
    return frame


@pytest.fixture(scope="module")
def activations() -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "layer": layer,
                "hook": hook,
                "linear_cka": 1 - 0.1 * layer,
                "debiased_cka": 1 - 0.12 * layer,
                "cosine": 1.0,
            }
            for layer in range(3)
            for hook in ("resid_post", "attn_out", "mlp_out")
        ]
    )


def test_heatmap(weights):
    fig = plot_weight_drift_heatmap(weights)
    assert isinstance(fig, go.Figure) and len(fig.data) == 1
    heat = fig.data[0]
    assert heat.type == "heatmap"
    assert list(heat.y) == ["W_Q", "W_in", "W_out"]  # fixed matrix order; per-head and embedding rows left out
    assert list(heat.x) == [0, 1, 2, 3]
    np.testing.assert_allclose(np.asarray(heat.z)[:, 3], 0.3)
    assert fig.layout.xaxis.title.text == LAYER_AXIS and fig.layout.xaxis.dtick == 1
    assert fig.layout.template == TEMPLATE
    assert heat.zmin == 0 and heat.zmax == pytest.approx(0.3)  # non-negative drift: the scale starts at 0
    assert heat.colorbar.title.text == "relative weight change ‖ΔW‖/‖W‖ (unitless)"
    (split,) = [s for s in fig.layout.shapes if s.type == "line"]
    assert split.x0 == split.x1 == 1.5  # between the lower (layers 0-1) and upper (2-3) half
    assert {a.text.strip() for a in fig.layout.annotations} == {"lower half", "upper half"}


def test_signed_heatmap_is_centred_at_zero(weights):
    signed = weights.assign(rel_change=weights["rel_change"] - 0.2)
    heat = plot_weight_drift_heatmap(signed).data[0]
    assert heat.zmid == 0 and heat.zmin == -heat.zmax


def test_drift_by_depth_overlays_models_and_marks_halves():
    frame = pd.concat(
        [
            pd.DataFrame({"model": "small", "layer": range(3), "drift": [0.0, 0.1, 0.4]}),
            pd.DataFrame({"model": "large", "layer": range(5), "drift": [0.0, 0.0, 0.1, 0.2, 0.5]}),
        ]
    )
    fig = plot_drift_by_depth(frame, title="t")
    assert [t.name for t in fig.data] == ["small", "large"]
    np.testing.assert_allclose(fig.data[0].x, [0, 0.5, 1])
    np.testing.assert_allclose(fig.data[1].x, [0, 0.25, 0.5, 0.75, 1])
    shaded = [s for s in fig.layout.shapes if s.type == "rect"]
    assert sorted((s.x0, s.x1) for s in shaded) == [(0.0, 0.5), (0.5, 1.0)]
    assert "depth" in fig.layout.xaxis.title.text and "halves split at 0.5" in fig.layout.xaxis.title.text
    assert fig.layout.yaxis.title.text == "drift (unitless)"
    assert fig.layout.title.text == "t"


def test_cka_by_layer_has_one_panel_per_hook(activations):
    fig = plot_cka_by_layer(activations)
    assert len(fig.data) == 3 * 3
    titles = {a.text for a in fig.layout.annotations if a.yref == "paper"}
    assert titles == {"residual stream after the layer", "attention output", "MLP output"}
    assert sum(t.showlegend for t in fig.data) == 3
    assert [t.name for t in fig.data[:3]] == ["linear CKA", "debiased CKA", "cosine"]
    assert len([s for s in fig.layout.shapes if s.type == "line"]) == 3  # the halves split in every panel
    assert fig.layout.yaxis.title.text.startswith("similarity")


def test_spectral_split(weights):
    fig = plot_spectral_split(weights)
    bars = [t for t in fig.data if t.type == "bar"]
    assert [b.name for b in bars] == ["singular values", "rotation"]
    np.testing.assert_allclose(np.asarray(bars[0].y) + np.asarray(bars[1].y), 1.0)
    assert fig.layout.barmode == "stack"
    lines = [t for t in fig.data if t.type == "scatter"]
    np.testing.assert_allclose(lines[0].y, [0, 2, 4, 6])


def test_missing_columns_are_a_clear_error(activations):
    with pytest.raises(ModlensError, match="lacks column"):
        plot_weight_drift_heatmap(activations)
