"""Store: creation, refusal of foreign directories, atomic records, leftover temp files, the frame."""

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modlens.errors import ModlensError
from modlens.store import MANIFEST, RECORDS, Store, StoreError, fingerprint, record_name

CONFIG = {"jobs": [{"kind": "mask", "seeds": [0, 1]}], "device": "cpu"}


def _open(root: Path, **kwargs) -> Store:
    return Store.open(root, kind="sweep", config=kwargs.pop("config", CONFIG), **kwargs)


def test_create_writes_manifest_with_config_fingerprint_and_provenance(tmp_path):
    store = _open(tmp_path / "s")
    manifest = json.loads((tmp_path / "s" / MANIFEST).read_text())
    assert manifest["kind"] == "sweep"
    assert manifest["config"] == CONFIG
    assert manifest["fingerprint"] == fingerprint(CONFIG) == store.fingerprint
    assert "packages" in manifest["provenance"]
    assert store.done() == set()
    assert list(store.frame().columns) == ["unit"]


def test_fingerprint_ignores_key_order_but_not_values():
    assert fingerprint({"a": 1, "b": [1, 2]}) == fingerprint({"b": [1, 2], "a": 1})
    assert fingerprint({"a": 1}) != fingerprint({"a": 2})
    assert fingerprint({"a": (1, 2)}) == fingerprint({"a": [1, 2]})


def test_write_then_resume_sees_the_records(tmp_path):
    store = _open(tmp_path / "s")
    store.write("b", [{"x": 1, "y": 0.5}], meta={"seed": 1})
    store.write("a", [{"x": 2, "y": np.float32(1.5)}, {"x": 3, "y": None}], meta={"seed": 0})
    again = _open(tmp_path / "s", resume=True)
    assert again.done() == {"a", "b"}
    frame = again.frame()
    assert list(frame["unit"]) == ["a", "a", "b"]  # ordered by key, rows in record order
    assert list(frame.columns) == ["unit", "x", "y"]
    assert frame["x"].tolist() == [2, 3, 1]
    assert [r["meta"] for r in again.records()] == [{"seed": 0}, {"seed": 1}]


def test_same_config_without_resume_is_refused_and_replace_starts_over(tmp_path):
    _open(tmp_path / "s").write("a", [{"x": 1}], meta={})
    with pytest.raises(StoreError, match="--resume"):
        _open(tmp_path / "s", resume=False)
    fresh = _open(tmp_path / "s", resume=False, allow_replace=True)
    assert fresh.done() == set()


def test_store_of_a_different_config_is_refused_unless_replaced(tmp_path):
    old = _open(tmp_path / "s")
    old.write("a", [{"x": 1}], meta={})
    other = {"jobs": [{"kind": "mask", "seeds": [0, 1, 2]}], "device": "cpu"}
    with pytest.raises(StoreError) as err:
        _open(tmp_path / "s", config=other)
    message = str(err.value)
    assert str(tmp_path / "s") in message and "--replace" in message and "another directory" in message
    assert "\n" not in message
    assert _open(tmp_path / "s").done() == {"a"}  # untouched by the refusal
    replaced = _open(tmp_path / "s", config=other, allow_replace=True)
    assert replaced.done() == set() and replaced.config == other
    assert [p.name for p in tmp_path.iterdir()] == ["s"]  # the old contents are gone, not moved beside


def test_non_store_directory_is_refused_and_a_file_too(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "notes.txt").write_text("mine")
    with pytest.raises(StoreError, match="holds no modlens store"):
        _open(tmp_path / "d")
    assert (tmp_path / "d" / "notes.txt").read_text() == "mine"
    (tmp_path / "f").write_text("x")
    with pytest.raises(StoreError, match="is a file"):
        _open(tmp_path / "f")
    assert issubclass(StoreError, ModlensError)
    (tmp_path / "empty").mkdir()
    assert _open(tmp_path / "empty").done() == set()  # an empty directory is fine


def test_crash_mid_write_leaves_record_absent_and_temp_file_ignored_then_cleaned(tmp_path):
    store = _open(tmp_path / "s")
    store.write("done", [{"x": 1}], meta={})
    folder = tmp_path / "s" / RECORDS
    # A writer killed between creating its temp file and the rename leaves only a partial temp file.
    partial = folder / f".{record_name('half')}.tmpabc123"
    partial.write_text('{"key": "half", "rows": [{"x"')
    assert _open(tmp_path / "s").done() == {"done"}
    assert not partial.exists()  # reopening cleaned it
    # A corrupt file under a record's name (disk trouble, hand edits) is skipped, never a crash.
    (folder / record_name("broken")).write_text("{not json")
    (folder / "stray.json").write_text(json.dumps({"key": "elsewhere", "rows": []}))
    store = _open(tmp_path / "s")
    assert store.done() == {"done"}
    assert store.frame()["unit"].tolist() == ["done"]


def test_write_is_atomic_when_serialisation_fails(tmp_path):
    store = _open(tmp_path / "s")
    with pytest.raises(StoreError, match="cannot store"):
        store.write("bad", [{"x": object()}], meta={})
    assert store.done() == set()
    assert os.listdir(tmp_path / "s" / RECORDS) == []


def test_rewriting_a_key_replaces_its_record(tmp_path):
    store = _open(tmp_path / "s")
    store.write("k", [{"x": 1}], meta={})
    store.write("k", [{"x": 2}], meta={})
    assert _open(tmp_path / "s").frame()["x"].tolist() == [2]


def test_read_opens_any_store_and_refuses_non_stores(tmp_path):
    _open(tmp_path / "s").write("k|a=1/b", [{"x": 1.25}], meta={})
    frame = Store.read(tmp_path / "s").frame()
    pd.testing.assert_frame_equal(frame, pd.DataFrame({"unit": ["k|a=1/b"], "x": [1.25]}))
    with pytest.raises(StoreError, match="no modlens store"):
        Store.read(tmp_path)


def test_record_names_are_safe_and_distinct():
    names = {record_name(k) for k in ["a/b", "a_b", "a|b", "../../etc", "sort∘swap", "x" * 500]}
    assert len(names) == 6
    assert all("/" not in n and len(n) < 120 and not n.startswith(".") for n in names)
