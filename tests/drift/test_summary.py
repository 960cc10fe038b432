"""Depth summaries: hand-computed shares and mean depths."""

import numpy as np
import pandas as pd
import pytest

from modlens.drift import depth_summary, summarize_activation_drift, summarize_weight_drift


def test_all_drift_in_top_layer():
    s = depth_summary([0, 0, 0, 2.0], [0, 1, 2, 3], 4)
    assert s == {"lower_share": 0.0, "upper_share": 1.0, "mean_depth": 1.0, "total": 2.0}


def test_uniform_drift_is_centred():
    s = depth_summary([1, 1, 1, 1], [0, 1, 2, 3], 4)
    assert s["lower_share"] == pytest.approx(0.5)
    assert s["mean_depth"] == pytest.approx(0.5)


def test_odd_layer_count_splits_the_middle_layer():
    s = depth_summary([0, 1, 0], [0, 1, 2], 3)
    assert s["lower_share"] == pytest.approx(0.5)
    assert s["mean_depth"] == pytest.approx(0.5)
    s = depth_summary([3, 1, 0], [0, 1, 2], 3)  # lower: 3 + 0.5
    assert s["lower_share"] == pytest.approx(3.5 / 4)
    assert s["mean_depth"] == pytest.approx(0.5 / 4)


def test_no_drift_gives_nan_shares():
    s = depth_summary([0, 0], [0, 1], 2)
    assert np.isnan(s["lower_share"]) and s["total"] == 0


def test_frame_summaries():
    acts = pd.DataFrame(
        {
            "layer": [0, 1, 0, 1],
            "hook": ["resid_post", "resid_post", "mlp_out", "mlp_out"],
            "linear_cka": [1.0, 0.5, 0.8, 0.8],
            "cosine": [1.0, 0.9, 1.0, 1.0],
        }
    )
    out = summarize_activation_drift(acts).set_index(["hook", "measure"])
    assert out.loc[("resid_post", "1-linear_cka"), "upper_share"] == pytest.approx(1.0)
    assert out.loc[("mlp_out", "1-linear_cka"), "mean_depth"] == pytest.approx(0.5)
    assert np.isnan(out.loc[("mlp_out", "1-cosine"), "mean_depth"])
    weights = pd.DataFrame(
        {
            "layer": pd.array([None, 0, 1, 1, 1], dtype="Int64"),
            "matrix": ["W_E", "W_in", "W_in", "W_Q", "W_Q"],
            "head": pd.array([None, None, None, None, 0], dtype="Int64"),
            "rel_change": [9.0, 0.0, 0.2, 0.4, 100.0],
            "cosine": [0.0, 1.0, 0.9, 0.9, 0.0],
        }
    )
    w = summarize_weight_drift(weights).set_index("measure")
    assert w.loc["rel_change", "total"] == pytest.approx(0.3)  # embeddings and per-head rows left out
    assert w.loc["rel_change", "mean_depth"] == pytest.approx(1.0)
