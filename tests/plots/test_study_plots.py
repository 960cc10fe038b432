"""Study figures: built from synthetic summaries; assertions on the figure objects, not pixels."""

import numpy as np
import plotly.graph_objects as go
import pytest

from modlens.analysis import WITHIN, rank_correlations, summarize_levels, synthetic_study_frame
from modlens.errors import ModlensError
from modlens.plots.study import (
    CONTROL_NAME,
    LOSS_AXIS,
    PANEL_LOSS_AXIS,
    RHO_AXIS,
    plot_correlations,
    plot_metric_vs_quality,
    plot_metrics_grid,
)
from modlens.plots.style import TEMPLATE

METRICS = {"mask_iou_excess": (2.0, 0.05), "heldout_composite_accuracy": (-0.1, 0.05), "novel_metric": (0.0, 1.0)}


@pytest.fixture(scope="module")
def frame():
    return synthetic_study_frame(METRICS, depths=(2, 3), seeds=(0, 1, 2))


@pytest.fixture(scope="module")
def summary(frame):
    return summarize_levels(frame)


def test_metric_vs_quality(summary):
    fig = plot_metric_vs_quality(summary, metric="mask_iou_excess")
    assert isinstance(fig, go.Figure) and fig.layout.template == TEMPLATE
    # two groups, each: a line through pretrained levels and a control cross
    assert [t.type for t in fig.data] == ["scatter"] * 4
    lines = [t for t in fig.data if t.mode == "lines+markers"]
    controls = [t for t in fig.data if t.name == CONTROL_NAME]
    assert len(lines) == 2 and len(controls) == 2
    assert [t.showlegend for t in controls] == [True, False]
    assert all(len(t.x) == 3 for t in lines) and all(len(t.x) == 1 for t in controls)
    assert controls[0].marker.symbol == "x"
    assert lines[0].error_y.array is not None and (lines[0].error_y.array >= 0).all()
    assert fig.layout.xaxis.title.text == LOSS_AXIS and fig.layout.xaxis.type == "log"
    low, high = sorted(fig.layout.xaxis.range)
    assert fig.layout.xaxis.range[0] > fig.layout.xaxis.range[1]  # reversed: better pretraining to the right
    assert len(fig.layout.xaxis.tickvals) >= 2 and all(low <= np.log10(t) <= high for t in fig.layout.xaxis.tickvals)
    assert fig.layout.yaxis.title.text == "mask IoU between subroutines minus random-mask IoU"


def test_unknown_metric_label_is_its_name(summary):
    fig = plot_metric_vs_quality(summary, metric="novel_metric")
    assert fig.layout.yaxis.title.text == "novel_metric"


def test_missing_metric_is_a_clear_error(summary):
    with pytest.raises(ModlensError, match="no summary rows for metric 'nope'"):
        plot_metric_vs_quality(summary, metric="nope")


def test_grid(summary):
    fig = plot_metrics_grid(summary, cols=2)
    assert len(fig.data) == 3 * 4  # three panels, four traces each
    titles = [a.text for a in fig.layout.annotations]
    assert titles == ["heldout_composite_accuracy", "mask_iou_excess", "novel_metric"]  # registry order, then others
    assert fig.layout.xaxis.title.text == PANEL_LOSS_AXIS
    assert fig.layout.xaxis3.range == fig.layout.xaxis.range and fig.layout.xaxis.range[0] > fig.layout.xaxis.range[1]
    assert fig.layout.yaxis2.title.text.replace("<br>", " ") == "mask IoU between subroutines minus random-mask IoU"
    assert fig.layout.xaxis.type == "log"
    assert sum(bool(t.showlegend) for t in fig.data) == 3  # two groups + the control, once


def test_grid_with_an_empty_cell_puts_the_legend_there(summary):
    fig = plot_metrics_grid(summary, cols=2)  # three panels on a 2 x 2 grid
    assert fig.layout.xaxis4.visible is False and fig.layout.yaxis4.visible is False
    assert fig.layout.legend.x == pytest.approx(fig.layout.xaxis4.domain[0])
    assert fig.layout.legend.y == pytest.approx(fig.layout.yaxis4.domain[1])
    full = plot_metrics_grid(summary, metrics=["mask_iou_excess", "novel_metric"], cols=2)
    assert full.layout.legend.orientation == "h"  # no empty cell: the legend stays below


def test_group_names_in_words(summary):
    names = [t.name for t in plot_metric_vs_quality(summary, metric="mask_iou_excess").data if t.name != CONTROL_NAME]
    assert names == ["2 layers, corpus primitives, label noise 0", "3 layers, corpus primitives, label noise 0"]


def test_grid_subset_and_errors(summary):
    assert len(plot_metrics_grid(summary, metrics=["mask_iou_excess"]).data) == 4
    with pytest.raises(ModlensError, match="nope"):
        plot_metrics_grid(summary, metrics=["mask_iou_excess", "nope"])


def test_correlations_forest(frame):
    corr = rank_correlations(frame, n_perm=99)
    fig = plot_correlations(corr)
    assert [t.name for t in fig.data] == list(dict.fromkeys(corr["scope"]))
    assert fig.data[0].name == WITHIN and len(fig.data[0].x) == 3
    assert "mask_iou_excess [lower = modular]" in fig.data[0].y
    assert "novel_metric [context]" in fig.data[0].y
    assert fig.layout.xaxis.title.text == RHO_AXIS and tuple(fig.layout.xaxis.range) == (-1.05, 1.05)
    assert len(plot_correlations(corr, scopes=[WITHIN]).data) == 1


def test_correlations_single_group_and_missing_rho():
    frame = synthetic_study_frame({"mask_iou_excess": (2.0, 0.05), "finetune_steps": (0.0, 0.0)}, seeds=(0, 1, 2))
    fig = plot_correlations(rank_correlations(frame, n_perm=99))
    assert [t.name for t in fig.data] == [WITHIN]  # the one group equals the headline row
    assert list(fig.layout.yaxis.tickvals) == [
        "mask_iou_excess [lower = modular]",
        "finetune_steps [context] (no ρ: constant)",
    ]
