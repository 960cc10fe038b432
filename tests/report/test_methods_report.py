"""The report of a study with several fine-tuning methods: the per-method section, drift overlaid by method, and
the per-method table the CLI prints; one method leaves the report as it was."""

import html

import numpy as np
import pandas as pd
import pytest

from modlens.analysis import analyse_study, synthetic_study_frame
from modlens.cli import main
from modlens.cli.report import methods_text
from modlens.report import build_study_report, drift_figures
from modlens.store import Store

N_PERM = 199
METRICS = {"heldout_composite_accuracy": (-0.3, 0.02), "reuse_specificity": (0.0, 0.1)}
PRIMARY = ("heldout_composite_accuracy", "reuse_specificity")
PROXY_REASON = "proxy-tuning changes no weight"


def method_frame() -> pd.DataFrame:
    """full; upper with held-out accuracy +0.3 at the best level; proxy without reuse specificity (NaN + reason)."""
    base = synthetic_study_frame(METRICS, seeds=tuple(range(6)))
    parts = []
    for method in ("full", "upper", "proxy"):
        part = base.assign(method=method, unit=base["unit"] + f"-{method}", reason="")
        if method == "upper":
            part.loc[(part["metric"] == "heldout_composite_accuracy") & (part["step"] == 3000), "value"] += 0.3
        if method == "proxy":
            gone = part["metric"] == "reuse_specificity"
            part.loc[gone, "value"] = np.nan
            part.loc[gone, "reason"] = PROXY_REASON
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def drift_table(methods=("full", "upper", "proxy")) -> pd.DataFrame:
    rows = []
    for method in methods:
        for seed in (0, 1):
            for step in (0, 300, 3000):
                for layer in range(4):
                    drift = np.nan if method == "proxy" else (layer + 1) * (2.0 if method == "upper" else 1.0)
                    reason = PROXY_REASON if method == "proxy" else ""
                    row = {"method": method, "depth": 4, "seed": seed, "step": step, "layer": layer, "reason": reason}
                    rows.append(row | {"weight_rel_change": drift, "cka_drift": drift})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def page():
    return build_study_report(
        method_frame(), config={}, provenance={}, primary_metrics=PRIMARY, n_perm=N_PERM, power_studies=0
    )


def test_methods_section_has_tables_sentences_and_reasons(page):
    analysis = analyse_study(method_frame(), primary_metrics=PRIMARY, n_perm=N_PERM, power_studies=0)
    assert analysis.methods is not None
    assert "<h2>Fine-tuning methods</h2>" in page
    for sentence in analysis.methods.sentences:
        assert html.escape(sentence, quote=False) in page
    assert "<th>difference from reference [interval]</th>" in page and "<th>p (sign flip)</th>" in page
    assert f"<td>absent: {PROXY_REASON}</td>" in page  # per-method table and contrast table
    assert f"<td>{PROXY_REASON}</td>" in page  # the absent table
    assert page.index("<h2>The answer in words</h2>") < page.index("<h2>Fine-tuning methods</h2>")


def test_single_method_report_has_no_methods_section():
    frame = synthetic_study_frame(METRICS, seeds=(0, 1, 2))
    plain = build_study_report(frame, config={}, provenance={}, n_perm=N_PERM, power_studies=0)
    tagged = build_study_report(frame.assign(method="full"), config={}, provenance={}, n_perm=N_PERM, power_studies=0)
    assert "Fine-tuning methods" not in plain
    assert plain == tagged


def test_drift_figure_overlays_methods():
    figures = drift_figures(drift_table())
    fig = figures["weight_drift"].figure
    names = [t.name for t in fig.data]
    assert names == ["full, 4 layers, step 3000", "upper, 4 layers, step 3000"]  # most-pretrained step only
    assert fig.data[0].line.color != fig.data[1].line.color  # colour by method
    assert list(fig.data[1].y) == pytest.approx([2.0, 4.0, 6.0, 8.0])
    caption = figures["weight_drift"].caption
    assert "where in depth each fine-tuning method changes the model" in caption
    assert f"proxy ({PROXY_REASON})" in caption


def test_drift_figure_single_method_unchanged():
    one = drift_figures(drift_table(("full",)))
    untagged = drift_figures(drift_table(("full",)).drop(columns=["method", "reason"]))
    assert [t.name for t in one["weight_drift"].figure.data] == [t.name for t in untagged["weight_drift"].figure.data]
    assert [t.name for t in untagged["weight_drift"].figure.data] == [
        "4 layers, step 0 (random init)",
        "4 layers, step 300",
        "4 layers, step 3000",
    ]
    assert one["weight_drift"].caption == untagged["weight_drift"].caption


def test_methods_text_lists_every_method_and_contrast():
    analysis = analyse_study(method_frame(), primary_metrics=PRIMARY, n_perm=N_PERM, power_studies=0)
    assert analysis.methods is not None
    text = methods_text(analysis.methods)
    assert text.startswith("Per fine-tuning method:")
    assert "Each method minus full at the most-pretrained checkpoints" in text
    for method in ("full", "upper", "proxy"):
        assert method in text
    assert f"Absent for proxy: {PROXY_REASON}." in text and text.count(PROXY_REASON) == 1  # the reason once


def test_cli_report_prints_the_per_method_table(tmp_path, capsys):
    store = Store.open(tmp_path / "study", kind="study", config={"primary_metrics": list(PRIMARY)})
    for unit, part in method_frame().groupby("unit"):
        store.write(str(unit), [{"table": "metrics", **r} for r in part.to_dict("records")], meta={})
    assert main(["report", str(tmp_path / "study"), "--no-static", "--n-perm", "99"]) == 0
    printed = capsys.readouterr().out
    assert "\n- Of the 2 primary metrics" in printed
    assert "Per fine-tuning method:" in printed and f"Absent for proxy: {PROXY_REASON}." in printed
    assert printed.index("Of the 2 primary metrics") < printed.index("Per fine-tuning method:")
