"""Executors and run_units: resume, failures, a real process killed mid-run, bad specs, unreachable Dask."""

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pytest
import torch

from modlens import executors
from modlens.errors import ModlensError
from modlens.executors import ExecutorError, Unit, UnitsFailedError, demo_unit, open_executor, run_units
from modlens.store import RECORDS, Store

REPO = Path(__file__).resolve().parent.parent


def _units(n: int, **kwargs) -> list[Unit]:
    return [Unit(f"u{s:02d}", demo_unit, {"seed": s, **kwargs}, {"seed": s}) for s in range(n)]


def _store(root: Path, resume: bool = True) -> Store:
    return Store.open(root, kind="test", config={"demo": 6}, resume=resume)


def test_local_run_records_every_unit_and_restores_threads(tmp_path):
    threads = torch.get_num_threads()
    frame = run_units(_units(3), _store(tmp_path / "s"), progress=False)
    assert torch.get_num_threads() == threads
    assert frame["unit"].unique().tolist() == ["u00", "u01", "u02"]
    assert list(frame.columns) == ["unit", "seed", "i", "value"]
    record = Store.read(tmp_path / "s").records()[0]
    assert record["meta"]["seed"] == 0
    assert record["meta"]["provenance"]["executor"] == "local"
    assert "git_commit" in record["meta"]["provenance"]
    timing = record["meta"]["provenance"]
    assert timing["seconds"] >= 0 and 0 <= timing["cpu_seconds"] <= timing["seconds"] + 0.05


def test_resume_runs_only_missing_units(tmp_path):
    store = _store(tmp_path / "s")
    run_units(_units(2), store, progress=False)
    calls = []
    units = [Unit(u.key, _counting, {"seed": int(u.key[1:]), "calls": calls}, {}) for u in _units(4)]
    frame = run_units(units, _store(tmp_path / "s"), progress=False)
    assert calls == [2, 3]
    expected = run_units(_units(4), _store(tmp_path / "fresh"), progress=False)
    pd.testing.assert_frame_equal(frame, expected)


def _counting(*, seed: int, calls: list) -> list[dict]:
    calls.append(seed)
    return demo_unit(seed=seed)


def test_failing_unit_lets_others_finish_and_rerun_retries_only_it(tmp_path):
    units = _units(4)
    units[1] = Unit("u01", demo_unit, {"seed": 1, "fail": True}, {})
    with pytest.raises(UnitsFailedError) as err:
        run_units(units, _store(tmp_path / "s"), progress=False)
    assert "u01" in str(err.value) and "1 of 4 units failed" in str(err.value) and "\n" not in str(err.value)
    assert set(err.value.failures) == {"u01"}
    assert Store.read(tmp_path / "s").done() == {"u00", "u02", "u03"}
    frame = run_units(_units(4), _store(tmp_path / "s"), progress=False)
    pd.testing.assert_frame_equal(frame, run_units(_units(4), _store(tmp_path / "fresh"), progress=False))


def test_duplicate_keys_are_refused(tmp_path):
    with pytest.raises(ModlensError, match="unique"):
        run_units(_units(2) + _units(1), _store(tmp_path / "s"), progress=False)


@pytest.mark.parametrize("spec", ["threads", "processes:0", "processes:x", "dask://", "dask://tcp://h:1", ""])
def test_bad_executor_spec_lists_valid_forms(spec):
    with pytest.raises(ExecutorError) as err, open_executor(spec):
        pass
    assert spec.partition(":")[0] in str(err.value) or "valid forms" in str(err.value)


def test_unknown_executor_names_the_valid_forms(tmp_path):
    with pytest.raises(ExecutorError, match="valid forms: local, processes, processes:N, dask://HOST:PORT"):
        run_units(_units(1), _store(tmp_path / "s"), executor="threads", progress=False)
    assert Store.read(tmp_path / "s").done() == set()


def test_unreachable_dask_scheduler_fails_quickly_with_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr(executors, "DASK_TIMEOUT_S", 2.0)
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    start = time.monotonic()
    with pytest.raises(ExecutorError) as err:
        run_units(_units(1), _store(tmp_path / "s"), executor=f"dask://127.0.0.1:{port}", progress=False)
    assert time.monotonic() - start < 30
    message = str(err.value)
    assert f"127.0.0.1:{port}" in message and "\n" not in message
    assert Store.read(tmp_path / "s").done() == set()


_KILLED_RUN = textwrap.dedent(
    """
    import sys, torch
    torch.set_num_threads(1)
    from modlens.executors import Unit, demo_unit, run_units
    from modlens.store import Store
    units = [Unit(f"u{s:02d}", demo_unit, {"seed": s, "delay": 0.4}, {"seed": s}) for s in range(12)]
    store = Store.open(sys.argv[1], kind="test", config={"demo": 6})
    run_units(units, store, progress=False)
    """
)


def test_process_killed_mid_run_resumes_to_the_uninterrupted_result(tmp_path):
    root = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_RUN, str(root)], env=env, cwd=tmp_path)
    records = root / RECORDS
    deadline = time.monotonic() + 120
    try:
        while not (records.is_dir() and any(p.suffix == ".json" and p.name[0] != "." for p in records.iterdir())):
            assert proc.poll() is None, "the run ended before any record appeared"
            assert time.monotonic() < deadline, "no record within 120 s"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    survived = Store.read(root).done()
    assert 1 <= len(survived) < 12
    units = [Unit(f"u{s:02d}", demo_unit, {"seed": s}, {"seed": s}) for s in range(12)]
    resumed = run_units(units, _store(root), progress=False)
    uninterrupted = run_units(units, _store(tmp_path / "whole"), progress=False)
    pd.testing.assert_frame_equal(resumed, uninterrupted)
    assert not [p for p in records.iterdir() if p.name.startswith(".")]  # no temp file left behind


def _threads_seen(*, delay: float) -> list[dict]:
    from transformers.utils import logging as hf_logging

    time.sleep(delay)
    return [{"delay": delay, "threads": torch.get_num_threads(), "hf_bars": hf_logging.is_progress_bar_enabled()}]


def test_open_executor_object_is_used_and_units_sharing_a_process_stay_single_threaded(tmp_path):
    from transformers.utils import logging as hf_logging

    hf_logging.enable_progress_bar()
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        # Two units overlap in one process; the first to finish must not give the other its threads back.
        units = [Unit(f"t{d}", _threads_seen, {"delay": d}, {}) for d in (0.05, 0.5)]
        with ThreadPoolExecutor(max_workers=2) as pool:
            frame = run_units(units, _store(tmp_path / "s"), executor=pool, progress=False)
            assert pool.submit(int, "3").result() == 3  # left open for the caller
        assert frame["threads"].tolist() == [1, 1]
        assert frame["hf_bars"].tolist() == [False, False]  # transformers' bars are off inside units ...
        assert torch.get_num_threads() == 2
        assert hf_logging.is_progress_bar_enabled()  # ... and back on after them
        record = Store.read(tmp_path / "s").records()[0]
        assert record["meta"]["provenance"]["executor"] == "ThreadPoolExecutor"
    finally:
        torch.set_num_threads(before)
