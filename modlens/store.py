"""Results store of sweeps and studies: a manifest plus one atomically written record file per unit of work.

A store is a directory::

    manifest.json          kind, resolved config, its fingerprint, provenance of the first run
    records/<name>.json    one per finished unit: {"key", "meta", "rows"}

Records are written to a temporary file in ``records/`` and renamed into place (after ``fsync``), so a
unit's record is either complete or absent, whenever the run is killed. Leftover temporary files are
removed when the store is opened. The fingerprint (a hash of the canonical JSON of the config) tells a
resumed run apart from a different study written to the same directory.
"""

import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from modlens.atomic import remove_staging, write_json_atomic
from modlens.errors import ModlensError
from modlens.provenance import provenance

log = logging.getLogger(__name__)

FORMAT = "modlens-store/1"
MANIFEST = "manifest.json"
RECORDS = "records"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.=+-]+")


class StoreError(ModlensError):
    """A results directory that cannot be used as asked (another study's store, not a store, bad record)."""


def canonical_json(value: Any) -> str:
    """Key-sorted, whitespace-free JSON: the same config always gives the same text."""
    return json.dumps(to_json(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def fingerprint(config: Mapping[str, Any]) -> str:
    """A short hash identifying a config (SHA-256 of its canonical JSON, 16 hex digits)."""
    return hashlib.sha256(canonical_json(config).encode("utf-8")).hexdigest()[:16]


def record_name(key: str) -> str:
    """The file name of a unit's record: a readable slug of the key plus a hash that makes it unique."""
    slug = _UNSAFE.sub("_", key).strip("._")[:80] or "unit"
    return f"{slug}-{hashlib.sha256(key.encode('utf-8')).hexdigest()[:12]}.json"


def to_json(value: Any) -> Any:
    """``value`` with numpy/pandas scalars, tuples and paths turned into plain JSON types.

    Raises:
        StoreError: a value that has no faithful JSON form (a tensor, an arbitrary object).
    """
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, np.generic):
        return to_json(value.item())
    if isinstance(value, Mapping):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if value is pd.NA or value is pd.NaT:
        return None
    raise StoreError(f"cannot store a value of type {type(value).__name__} ({value!r:.60}); use JSON scalars")


class Store:
    """A results directory of one sweep or study. Create or reopen one with ``Store.open``.

    Attributes:
        root: the directory.
        manifest: ``{"format", "kind", "fingerprint", "config", "provenance"}`` as written on creation.
    """

    def __init__(self, root: Path, manifest: Mapping[str, Any]) -> None:
        self.root = root
        self.manifest = dict(manifest)
        self._cache: dict[str, dict[str, Any]] = {}

    # -- opening --------------------------------------------------------------------------------------
    @classmethod
    def open(
        cls,
        root: "str | os.PathLike[str]",
        *,
        kind: str,
        config: Mapping[str, Any],
        allow_replace: bool = False,
        resume: bool = True,
    ) -> "Store":
        """Creates a store in ``root``, or reopens the one there if it holds the same ``kind`` and config.

        Args:
            root: the results directory (created if missing).
            kind: what the store holds, e.g. ``"study"`` or ``"sweep"``.
            config: the resolved, JSON-ready configuration; its fingerprint identifies the store.
            allow_replace: delete whatever ``root`` holds (another store, other files) and start fresh.
            resume: reopen a store of the same config and keep its finished units. Without it (and without
                ``allow_replace``) an existing store is an error, so finished work is never reused by accident.

        Raises:
            StoreError: ``root`` is a file, a non-empty directory that is not a store, a store of a different
                config, or (``resume=False``) a store of the same config.
        """
        path = Path(root).expanduser()
        config = to_json(config)
        fp = fingerprint(config)
        where = repr(str(path))
        if path.exists() and not path.is_dir():
            raise StoreError(f"output path {where} is a file; choose a directory")
        existing = _read_manifest(path)
        if existing is None:
            if path.is_dir() and _has_content(path):
                if not allow_replace:
                    raise StoreError(
                        f"output directory {where} is not empty and holds no modlens store; "
                        "choose another directory or pass --replace to delete its contents"
                    )
                return cls._create(path, kind, config, fp, replace=True)
            return cls._create(path, kind, config, fp, replace=False)
        if existing.get("fingerprint") != fp or existing.get("kind") != kind:
            if not allow_replace:
                other = f"{existing.get('kind', '?')} {existing.get('fingerprint', '?')}"
                raise StoreError(
                    f"output directory {where} holds the store of a different {other} (this {kind} is {fp}); "
                    "choose another directory or pass --replace to delete it and start fresh"
                )
            return cls._create(path, kind, config, fp, replace=True)
        if allow_replace:
            return cls._create(path, kind, config, fp, replace=True)
        if not resume:
            raise StoreError(
                f"output directory {where} already holds this {kind}; pass --resume to continue it "
                "or --replace to start over"
            )
        store = cls(path, existing)
        store._clean()
        return store

    @classmethod
    def read(cls, root: "str | os.PathLike[str]") -> "Store":
        """Opens an existing store for reading, whatever its config.

        Raises:
            StoreError: ``root`` holds no store.
        """
        path = Path(root).expanduser()
        manifest = _read_manifest(path)
        if manifest is None:
            raise StoreError(f"{str(path)!r} holds no modlens store (no readable {MANIFEST})")
        return cls(path, manifest)

    @classmethod
    def _create(cls, path: Path, kind: str, config: Any, fp: str, *, replace: bool) -> "Store":
        manifest = {
            "format": FORMAT,
            "kind": kind,
            "fingerprint": fp,
            "config": config,
            "provenance": provenance(),
        }
        if replace and path.exists():
            # Move the old contents aside first, so an interruption never leaves a half-deleted store in place.
            trash = Path(tempfile.mkdtemp(prefix=f".{path.name}.old-", dir=path.parent))
            os.replace(path, trash / "old")
            shutil.rmtree(trash, ignore_errors=True)
        (path / RECORDS).mkdir(parents=True, exist_ok=True)
        write_json_atomic(path / MANIFEST, manifest)
        log.info("created %s store %s in %s", kind, fp, path)
        return cls(path, manifest)

    # -- properties -------------------------------------------------------------------------------------
    @property
    def kind(self) -> str:
        return str(self.manifest["kind"])

    @property
    def fingerprint(self) -> str:
        return str(self.manifest["fingerprint"])

    @property
    def config(self) -> dict[str, Any]:
        return dict(self.manifest["config"])

    # -- records ----------------------------------------------------------------------------------------
    def write(self, key: str, rows: Sequence[Mapping[str, Any]], *, meta: Mapping[str, Any]) -> Path:
        """Writes the record of one finished unit atomically (replacing an earlier record of the same key).

        Args:
            key: the unit's key, unique within the store.
            rows: tidy rows (dicts of JSON-ready scalars).
            meta: the unit's config and provenance.

        Raises:
            StoreError: a value that cannot be stored as JSON.
        """
        record = {"key": key, "meta": to_json(meta), "rows": [to_json(dict(row)) for row in rows]}
        path = self.root / RECORDS / record_name(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(path, record)
        self._cache[path.name] = record
        return path

    def done(self) -> set[str]:
        """Keys of the units whose record is in the store."""
        return {r["key"] for r in self._load()}

    def records(self) -> list[dict[str, Any]]:
        """All records, ordered by key."""
        return sorted(self._load(), key=lambda r: r["key"])

    def frame(self) -> pd.DataFrame:
        """All rows of all records as one tidy DataFrame, with a leading ``unit`` column (the key), by key."""
        rows = [{"unit": r["key"], **row} for r in self.records() for row in r["rows"]]
        if not rows:
            return pd.DataFrame({"unit": pd.Series(dtype=object)})
        return pd.DataFrame.from_records(rows)

    def _load(self) -> list[dict[str, Any]]:
        """Reads every record file (cached by name); unreadable or misnamed files are skipped with a warning."""
        folder = self.root / RECORDS
        names = sorted(p.name for p in folder.glob("*.json") if not p.name.startswith("."))
        for name in set(self._cache) - set(names):
            del self._cache[name]
        for name in names:
            if name in self._cache:
                continue
            record = _read_record(folder / name)
            if record is not None:
                self._cache[name] = record
        return list(self._cache.values())

    def _clean(self) -> None:
        """Removes temporary files a killed run left behind."""
        remove_staging(self.root / RECORDS)
        remove_staging(self.root)

    def __repr__(self) -> str:
        return f"Store({str(self.root)!r}, kind={self.kind!r}, fingerprint={self.fingerprint!r})"


def _read_manifest(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        return None
    return data


def _read_record(path: Path) -> dict[str, Any] | None:
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        log.warning("ignoring unreadable record %s (%s)", path, err)
        return None
    if (
        not isinstance(record, dict)
        or not isinstance(record.get("key"), str)
        or not isinstance(record.get("rows"), list)
        or record_name(record["key"]) != path.name
    ):
        log.warning("ignoring %s: not a record of this store", path)
        return None
    return record


def _has_content(path: Path) -> bool:
    return any(path.iterdir())
