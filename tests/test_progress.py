"""Progress bars can be switched off per call, globally, or through the environment."""

import pytest

from modlens.progress import progress_bar, progress_enabled, set_progress


@pytest.fixture(autouse=True)
def _reset_global():
    from transformers.utils import logging as hf_logging

    was = hf_logging.is_progress_bar_enabled()
    yield
    set_progress(None)
    (hf_logging.enable_progress_bar if was else hf_logging.disable_progress_bar)()


def test_switch_reaches_transformers_bars():
    from transformers.utils import logging as hf_logging

    set_progress(False)
    assert not hf_logging.is_progress_bar_enabled()
    set_progress(True)
    assert hf_logging.is_progress_bar_enabled()


def test_call_can_switch_off_but_not_on():
    set_progress(False)
    assert not progress_enabled(True)
    set_progress(True)
    assert not progress_enabled(False)
    assert progress_enabled(True)


@pytest.mark.parametrize(("value", "shown"), [("0", False), ("off", False), ("false", False), ("1", True), ("", True)])
def test_environment_switch(monkeypatch, value, shown):
    monkeypatch.setenv("MODLENS_PROGRESS", value)
    assert progress_enabled(True) is shown


def test_global_switch_overrides_environment(monkeypatch):
    monkeypatch.setenv("MODLENS_PROGRESS", "0")
    set_progress(True)
    assert progress_enabled(True)


def test_disabled_bar_writes_nothing_and_still_iterates(capsys):
    set_progress(False)
    assert list(progress_bar(range(3), desc="x")) == [0, 1, 2]
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""


def test_enabled_bar_writes_to_stderr(capsys):
    set_progress(True)
    list(progress_bar(range(3), desc="counting"))
    assert "counting" in capsys.readouterr().err
