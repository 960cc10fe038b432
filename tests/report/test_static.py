"""Figure saving: HTML always; static formats through kaleido when a Chromium is installed."""

import plotly.graph_objects as go
import pytest

from modlens.errors import ModlensError
from modlens.report import save_figure, save_figures


@pytest.fixture(scope="module")
def fig() -> go.Figure:
    return go.Figure(go.Scatter(x=[0, 1, 2], y=[1, 3, 2]))


def test_html(fig, tmp_path):
    path = save_figure(fig, tmp_path / "sub" / "f.html")
    text = path.read_text()
    assert "<html" in text.lower() and "plotly" in text.lower()


def test_unknown_suffix(fig, tmp_path):
    with pytest.raises(ModlensError, match=r"\.png"):
        save_figure(fig, tmp_path / "f.jpeg")


def test_bad_explicit_chromium_path(fig, tmp_path):
    with pytest.raises(ModlensError, match="not an executable"):
        save_figure(fig, tmp_path / "f.png", chromium=tmp_path / "nope")


def test_no_chromium_message(fig, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("MODLENS_CHROMIUM", raising=False)
    with pytest.raises(ModlensError, match="apt-get install chromium"):
        save_figure(fig, tmp_path / "f.png")


MAGIC = {"png": b"\x89PNG\r\n\x1a\n", "svg": b"<svg", "pdf": b"%PDF"}


@pytest.mark.parametrize("suffix", sorted(MAGIC))
def test_static_export(fig, tmp_path, chromium, suffix):
    path = save_figure(fig, tmp_path / f"f.{suffix}", chromium=chromium)
    data = path.read_bytes()
    assert data.startswith(MAGIC[suffix])
    assert len(data) > 1000  # a rendered figure, not an empty shell


def test_save_figures_shares_one_browser_for_every_format(fig, tmp_path, chromium, monkeypatch):
    import kaleido

    calls = []
    real = kaleido.write_fig_from_object_sync
    monkeypatch.setattr(kaleido, "write_fig_from_object_sync", lambda *a, **k: calls.append(1) or real(*a, **k))
    items = [(fig, tmp_path / f"out/f.{suffix}") for suffix in (*sorted(MAGIC), "html")]
    written = save_figures(items, chromium=chromium)
    assert len(calls) == 1  # one browser session rendered all three static files
    assert written == [path for _, path in items]
    for path in written[:-1]:
        assert path.read_bytes().startswith(MAGIC[path.suffix[1:]])
    assert "plotly" in written[-1].read_text().lower()


def test_save_figures_checks_every_suffix_before_writing(fig, tmp_path):
    with pytest.raises(ModlensError, match=r"f\.jpeg"):
        save_figures([(fig, tmp_path / "a.html"), (fig, tmp_path / "f.jpeg")])
    assert list(tmp_path.iterdir()) == []


def test_a_failing_browser_is_one_clear_error_and_html_is_still_written(fig, tmp_path, monkeypatch):
    import kaleido

    def crash(*args, **kwargs):
        raise RuntimeError("browser closed unexpectedly")

    monkeypatch.setattr(kaleido, "write_fig_from_object_sync", crash)
    fake = tmp_path / "chrome"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    with pytest.raises(ModlensError, match=r"static figure export with .* failed .*browser closed unexpectedly"):
        save_figures([(fig, tmp_path / "f.png"), (fig, tmp_path / "f.html")], chromium=fake)
    assert (tmp_path / "f.html").exists() and not (tmp_path / "f.png").exists()
