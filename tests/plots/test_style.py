"""The shared style: colour scales anchored at 0, axis titles in words, one template on every figure."""

import numpy as np
import pandas as pd
import pytest

from modlens.plots.labels import change_label, group_label, label
from modlens.plots.masks import plot_modularity_scores
from modlens.plots.style import DIVERGING, SEQUENTIAL, TEMPLATE, diverging_scale, sequential_scale, value_scale


def test_sequential_scale_starts_at_zero():
    assert sequential_scale([0.2, np.nan, 0.5]) == {"colorscale": SEQUENTIAL, "zmin": 0.0, "zmax": 0.5}
    assert sequential_scale([np.nan])["zmax"] == 1.0  # nothing to scale: a valid range still


def test_diverging_scale_is_symmetric_around_zero():
    scale = diverging_scale([[-0.1, 0.4], [np.nan, 0.0]], reverse=True)
    assert scale["colorscale"] == DIVERGING and scale["zmid"] == 0.0 and scale["reversescale"] is True
    assert scale["zmin"] == pytest.approx(-0.4) and scale["zmax"] == pytest.approx(0.4)
    assert value_scale([-1.0, 2.0])["zmid"] == 0.0 and value_scale([1.0, 2.0])["zmin"] == 0.0


def test_labels_are_words_with_units():
    assert label("rel_change") == "relative weight change ‖ΔW‖/‖W‖ (unitless)"
    assert label("loss") == "loss on the answer tokens (nats/token)"
    assert label("heldout_composite_accuracy") == "accuracy on unseen composite pairs (fraction)"
    assert label("something_new") == "something_new"
    assert change_label("answer_accuracy") == "change in whole-answer accuracy (fraction)"
    assert group_label(["depth", "label_noise"], [3, 0.0]) == "3 layers, label noise 0"


def test_scores_without_a_finite_value_say_so():
    frame = pd.DataFrame(
        {"metric": ["subnetwork_score", "ablation_score"], "subroutine": ["a", "a"], "value": [np.nan, np.nan]}
    )
    fig = plot_modularity_scores(frame)
    assert fig.layout.template == TEMPLATE
    assert [a.text for a in fig.layout.annotations] == [
        "no finite score: masks that fail the faithfulness gate are not scored"
    ]
    frame["value"] = [0.5, 0.1]
    assert not plot_modularity_scores(frame).layout.annotations
