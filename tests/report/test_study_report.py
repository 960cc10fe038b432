"""The study report: one self-contained page whose sentences, tables and figures come from the data."""

import html
import json
import re

import pandas as pd
import plotly.graph_objects as go
import pytest

from modlens.analysis import analyse_study, synthetic_study_frame
from modlens.errors import ModlensError
from modlens.report import build_study_report, load_study, write_study_report
from modlens.store import Store

N_PERM = 199
METRICS = {
    "mask_iou_excess": (0.2, 0.02),
    "heldout_composite_accuracy": (-0.3, 0.02),
    "reuse_specificity": (0.0, 0.1),
    "finetune_steps": (100.0, 5.0),
    "reached_target": (0.0, 0.0),
    "mask_rejection_rate": (0.05, 0.01),
}


@pytest.fixture(scope="module")
def frame():
    frame = synthetic_study_frame(METRICS, depths=(2, 3), seeds=(0, 1, 2), subroutines=("a", "b"))
    reached = frame["metric"] == "reached_target"
    frame.loc[reached, "value"] = 1.0
    frame.loc[reached & (frame["seed"] == 0) & (frame["step"] == 300), "value"] = 0.0  # one fine-tune missed
    return frame


@pytest.fixture(scope="module")
def page(frame):
    extra = {"Drift <by> depth": go.Figure(go.Bar(x=[0, 1], y=[1, 2]))}
    return build_study_report(
        frame,
        config={"preset": "quick", "seeds": [0, 1, 2]},
        provenance={"git_commit": "abc123"},
        extra_figures=extra,
        n_perm=N_PERM,
        power_studies=100,
    )


def test_page_holds_the_answer(frame, page):
    result = analyse_study(frame, n_perm=N_PERM, power_studies=100).answer
    for sentence in result.sentences:
        assert html.escape(sentence, quote=False) in page
    assert "How much does pretraining quality affect the modularity of fine-tuned models?" in page


def test_page_opens_with_the_answer_table_and_the_main_figure(page):
    order = [
        "<b>Question.</b>",
        "<h2>Answer: the primary metrics</h2>",
        "<b>Table 1.</b>",
        "<th>Holm-adjusted p</th>",
        "<h2>Figure 1. Modularity against pretraining quality</h2>",
        "<b>Figure 1.</b> Each panel is one metric",
        "<h2>The answer in words</h2>",
        "Of the 3 primary metrics",
        "<h2>Figure 2. Within-group rank correlations with pretraining loss</h2>",
        "<h2>Fine-tunes and masks counted</h2>",
        "<h2>Descriptive metrics</h2>",
        "mask_iou_excess: within-group Spearman",
    ]
    positions = [page.index(marker) for marker in order]
    assert positions == sorted(positions)
    assert "<td>established: more modular</td>" in page  # held-out accuracy rises with better pretraining
    assert "<td>not assessed</td>" in page and "not measured in this study" in page  # weight drift
    assert "point to more modular" not in page and "disagree in direction" not in page
    first_figure = page.index('class="plotly-graph-div"')
    assert page[:first_figure].count("<p class='summary'>") == 0  # no generated paragraph before the first figure


def test_main_figure_leads_with_primary_metrics(frame):
    from modlens.report import study_figures

    analysis = analyse_study(frame, primary_metrics=("reuse_specificity", "mask_iou_excess"), power_studies=0)
    figures = study_figures(analysis)
    assert list(figures) == ["main", "correlations", "other_metrics"]  # chosen by name
    fig = figures["main"].figure
    titles = [a.text for a in fig.layout.annotations]
    assert titles[:3] == ["reuse_specificity", "mask_iou_excess", "heldout_composite_accuracy"]
    assert "The first 2 panels are the primary metrics (reuse_specificity, mask_iou_excess)" in figures["main"].caption


def test_counts_table(page):
    assert "<th>fine-tunes reaching the target</th>" in page and "<td>2 of 3</td>" in page
    assert "<th>masks rejected as unfaithful</th>" in page


def test_plotly_embedded_once_and_every_figure_present(page):
    assert page.count("* plotly.js v") == 1
    ids = re.findall(r'<div id="(fig-[^"]+)" class="plotly-graph-div"', page)
    assert ids == ["fig-main", "fig-correlations", "fig-other_metrics", "fig-drift-by-depth"]
    assert "<h2>Figure 4. Drift &lt;by&gt; depth</h2>" in page  # headings are escaped


def test_tables_config_and_provenance(page):
    assert "<h2>Per-checkpoint table</h2>" in page
    assert "<th>pretraining loss (nats/token)</th>" in page and "<th>mask_iou_excess</th>" in page
    assert re.search(r"<td>\d\.\d+ \[\d\.\d+, \d\.\d+\]</td>", page)  # mean [low, high] cells
    assert "<h2>Random-init control (descriptive)</h2>" in page
    assert "<h2>Within-group rank correlations (and per group)</h2>" in page
    assert "within-run permutation test" in page
    assert "abc123" in page and "&quot;preset&quot;" not in page and '"preset": "quick"' in page


def test_empty_frame_is_a_user_error(frame):
    with pytest.raises(ModlensError, match="empty"):
        build_study_report(frame.iloc[0:0], config={}, provenance={})


def _study_store(root, frame):
    store = Store.open(root, kind="study", config={"preset": "test", "primary_metrics": ["mask_iou_excess"]})
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
    files = write_study_report(root, n_perm=N_PERM)
    assert files.html == root / "report.html" and files.figures == ()
    assert files.skipped and "Chromium" in files.skipped
    text = files.html.read_text(encoding="utf-8")
    assert text.count("* plotly.js v") == 1
    assert "Weight drift by depth" in text and "Activation drift by depth" in text
    assert 'id="fig-weight_drift"' in text and "lower (relative depth below 0.5)" in text  # the halves explained
    for depth in (2, 3):
        assert f"Mask density by layer ({depth} layers; tuned models)" in text
    assert json.dumps("test") in text  # the store's config
    assert files.answer.primary["metric"].tolist() == ["mask_iou_excess"]  # the config's primary metrics
    assert "Of the 1 primary metric," in text


def test_mask_figures_average_over_seeds_per_step():
    from modlens.report import mask_figures

    rows = [
        {"model": m, "depth": 2, "seed": seed, "step": step, "layer": layer, "group": "heads", "density": d}
        for m, d0 in (("tuned", 0.2), ("base", 0.9))
        for seed, d in ((0, d0), (1, d0 + 0.2))
        for step in (0, 100)
        for layer in (0, 1)
    ]
    figures = mask_figures(pd.DataFrame(rows))
    assert list(figures) == ["mask_density_2_layers"]
    fig = figures["mask_density_2_layers"].figure
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
