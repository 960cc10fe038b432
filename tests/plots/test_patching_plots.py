"""Patching heatmaps: layer x head for whole-sequence patches, component x position per position."""

import pandas as pd
import pytest

from modlens.components import Component
from modlens.patching.sweep import patching_frame
from modlens.plots.patching import plot_patching_heatmap


def frame(positions: list[int | None], direction: str = "denoising") -> pd.DataFrame:
    sites = [(Component(layer, "head", h), p) for layer in range(2) for h in range(3) for p in positions]
    values = [0.1 * i for i in range(len(sites))]
    return patching_frame(sites, 0.0, values, direction=direction, metric="normalised_logit_diff")


def test_heads_over_layers() -> None:
    fig = plot_patching_heatmap(frame([None]), kind="head")
    heat = fig.data[0]
    assert heat.z.shape == (2, 3) and list(heat.y) == ["0", "1"] and heat.z[1, 2] == pytest.approx(0.5)
    assert heat.zmid == 0 and heat.zmax == pytest.approx(0.5) and heat.zmin == pytest.approx(-0.5)  # 0 = corrupted
    assert heat.colorbar.title.text == "normalised logit difference (0 = corrupted, 1 = clean)"


def test_positions_labelled_with_tokens() -> None:
    fig = plot_patching_heatmap(frame([0, 1]), kind="head", tokens=["<bos>", "x"])
    heat = fig.data[0]
    assert heat.z.shape == (6, 2) and list(heat.x) == ["0: <bos>", "1: x"] and heat.y[0] == "L0H0"


def test_mixed_directions_and_missing_kind_are_refused() -> None:
    both = pd.concat([frame([None]), frame([None], direction="noising")])
    with pytest.raises(ValueError, match="mixes directions"):
        plot_patching_heatmap(both, kind="head")
    with pytest.raises(ValueError, match="no resid rows"):
        plot_patching_heatmap(frame([None]), kind="resid")
