"""The study report: one self-contained page whose sentences, tables and figures come from the data."""

import html
import json
import re

import pandas as pd
import plotly.graph_objects as go
import pytest

from modlens.analysis import answer, synthetic_study_frame
from modlens.errors import ModlensError
from modlens.report import build_study_report, load_study, write_study_report
from modlens.store import Store

N_BOOT = 200
METRICS = {"mask_iou": (0.2, 0.02), "heldout_composite_accuracy": (0.0, 0.1), "finetune_steps": (100.0, 5.0)}


@pytest.fixture(scope="module")
def frame():
    return synthetic_study_frame(METRICS, depths=(2, 3), seeds=(0, 1, 2), subroutines=("a", "b"))


@pytest.fixture(scope="module")
def page(frame):
    extra = {"Drift <by> depth": go.Figure(go.Bar(x=[0, 1], y=[1, 2]))}
    return build_study_report(
        frame,
        config={"preset": "quick", "seeds": [0, 1, 2]},
        provenance={"git_commit": "abc123"},
        extra_figures=extra,
        n_boot=N_BOOT,
    )


def test_page_holds_the_answer(frame, page):
    result = answer(frame, n_boot=N_BOOT)
    for sentence in result.sentences:
        assert html.escape(sentence, quote=False) in page
    assert "How much does pretraining quality affect the modularity of fine-tuned models?" in page


def test_plotly_embedded_once_and_every_figure_present(page):
    assert page.count("* plotly.js v") == 1
    ids = re.findall(r'<div id="(fig-[^"]+)" class="plotly-graph-div"', page)
    assert ids == [
        "fig-main-figure-modularity-against-pretraining-quality",
        "fig-rank-correlations-with-pretraining-loss",
        "fig-other-metrics-against-pretraining-quality",
        "fig-drift-by-depth",
    ]
    assert "<h2>Drift &lt;by&gt; depth</h2>" in page  # headings are escaped


def test_tables_config_and_provenance(page):
    assert "<h2>Per-checkpoint table</h2>" in page
    assert "<th>pretraining loss (nats/token)</th>" in page and "<th>mask_iou</th>" in page
    assert re.search(r"<td>\d\.\d+ \[\d\.\d+, \d\.\d+\]</td>", page)  # mean [low, high] cells
    assert "<h2>Random-init control</h2>" in page and "<h2>Rank correlations (pooled and per group)</h2>" in page
    assert "abc123" in page and "&quot;preset&quot;" not in page and '"preset": "quick"' in page


def test_empty_frame_is_a_user_error(frame):
    with pytest.raises(ModlensError, match="empty"):
        build_study_report(frame.iloc[0:0], config={}, provenance={})


def _study_store(root, frame):
    store = Store.open(root, kind="study", config={"preset": "test"})
    for unit, part in frame.groupby("unit"):
        rows = [{"table": "metrics", **row} for row in part.drop(columns=["unit"]).to_dict("records")]
        first = rows[0]
        rows += [
            {"table": "drift_layers", **{k: first[k] for k in ("depth", "seed", "corpus", "step", "label_noise")}}
            | {"layer": layer, "weight_rel_change": 0.1 * (layer + 1), "cka_drift": 0.05 * layer}
            for layer in range(int(first["depth"]))
        ]
        rows += [
            {"table": "mask_layers", **{k: first[k] for k in ("depth", "seed", "corpus", "step", "label_noise")}}
            | {"model": model, "subroutine": "a", "layer": layer, "group": group, "density": 0.25 * (layer + 1)}
            for model in ("tuned", "base")
            for layer in range(int(first["depth"]))
            for group in ("heads", "mlp")
        ]
        store.write(str(unit), rows, meta={"phase": "finetune"})
    return store


def test_write_from_store_without_chromium(frame, tmp_path, monkeypatch):
    root = tmp_path / "study"
    _study_store(root, frame)
    monkeypatch.setenv("PATH", str(tmp_path))  # no Chromium on PATH: static figures are skipped, page written
    monkeypatch.delenv("MODLENS_CHROMIUM", raising=False)
    files = write_study_report(root, n_boot=N_BOOT)
    assert files.html == root / "report.html" and files.figures == ()
    assert files.skipped and "Chromium" in files.skipped
    text = files.html.read_text(encoding="utf-8")
    assert text.count("* plotly.js v") == 1
    assert "Weight drift by depth" in text and "Activation drift by depth" in text
    for depth in (2, 3):
        assert f"Mask density by layer ({depth} layers; tuned models)" in text
    assert json.dumps("test") in text  # the store's config


def test_mask_figures_average_over_seeds_per_step():
    from modlens.report.study_files import mask_figures

    rows = [
        {"model": m, "depth": 2, "seed": seed, "step": step, "layer": layer, "group": "heads", "density": d}
        for m, d0 in (("tuned", 0.2), ("base", 0.9))
        for seed, d in ((0, d0), (1, d0 + 0.2))
        for step in (0, 100)
        for layer in (0, 1)
    ]
    figures = mask_figures(pd.DataFrame(rows))
    (fig,) = figures.values()
    assert [t.name for t in fig.data] == ["step 0 heads", "step 100 heads"]
    assert all(list(t.y) == pytest.approx([0.3, 0.3]) for t in fig.data)  # tuned only, mean of 0.2 and 0.4
    assert mask_figures(pd.DataFrame()) == {}


def test_load_study_refuses_other_stores(tmp_path):
    with pytest.raises(ModlensError, match="not a directory"):
        load_study(tmp_path / "missing")
    with pytest.raises(ModlensError, match="no modlens store"):
        load_study(tmp_path)
    Store.open(tmp_path / "sweep", kind="sweep", config={})
    with pytest.raises(ModlensError, match="not a study"):
        load_study(tmp_path / "sweep")
    Store.open(tmp_path / "empty", kind="study", config={})
    with pytest.raises(ModlensError, match="no measured checkpoints"):
        load_study(tmp_path / "empty")
