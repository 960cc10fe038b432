"""Units of work and the executors that run them: in-process, a local process pool, or a Dask cluster.

A ``Unit`` is a module-level function, its keyword arguments (seeds included) and its meta data. ``run_units``
submits the units not yet in a ``Store`` to any ``concurrent.futures.Executor`` and writes each record from
the calling process as soon as its unit finishes, so a killed run loses at most the units in flight.
Every unit runs with one torch thread, which makes results bit-identical whichever executor ran them.
"""

import concurrent.futures as cf
import contextlib
import datetime
import logging
import multiprocessing
import platform
import queue
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from modlens.allocator import relax_low_trim_threshold
from modlens.errors import ModlensError
from modlens.names import EXECUTOR_FORMS
from modlens.progress import progress_bar
from modlens.provenance import provenance
from modlens.store import Store

log = logging.getLogger(__name__)

DEFAULT_PROCESSES = 2
DASK_TIMEOUT_S = 10.0


class ExecutorError(ModlensError):
    """An executor spec that is malformed, or a cluster that cannot be reached."""


class UnitsFailedError(ModlensError):
    """Some units raised; the others are recorded. ``failures`` maps each failed key to its exception."""

    def __init__(self, message: str, failures: Mapping[str, BaseException]) -> None:
        super().__init__(message)
        self.failures = dict(failures)


@dataclass(frozen=True)
class Unit:
    """One independent, deterministic piece of work.

    Attributes:
        key: unique name of the unit within its store (e.g. ``"ablation/model=a/task=reverse/seed=0"``).
        fn: a module-level (picklable) function returning tidy rows: a list of dicts of JSON scalars.
        kwargs: keyword arguments of ``fn``, seeds included; picklable.
        meta: JSON-ready description of the unit, written into its record.
    """

    key: str
    fn: Callable[..., list[dict[str, Any]]]
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    meta: Mapping[str, Any] = field(default_factory=dict)


class LocalExecutor(cf.Executor):
    """Runs each submission at once, in the calling process and thread; the future is done on return."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> cf.Future:
        future: cf.Future = cf.Future()
        try:
            result = fn(*args, **kwargs)
        except BaseException as err:
            if not isinstance(err, Exception):
                raise  # KeyboardInterrupt and friends stop the run
            future.set_exception(err)
        else:
            future.set_result(result)
        return future


@contextlib.contextmanager
def open_executor(spec: str = "local") -> Iterator[cf.Executor]:
    """An executor described by ``spec``, shut down (cancelling unstarted work) when the block exits.

    Args:
        spec: ``"local"`` (in-process), ``"processes"`` / ``"processes:N"`` (a pool of N spawned worker
            processes, default 2), or ``"dask://HOST:PORT"`` (a running Dask scheduler; for SLURM/PBS start
            one with dask-jobqueue and pass its address).

    Raises:
        ExecutorError: unknown spec, or a Dask scheduler that does not answer within 10 s.
    """
    text = spec.strip()
    if text == "local":
        yield LocalExecutor()
    elif text == "processes" or text.startswith("processes:"):
        n = _n_workers(text)
        pool = cf.ProcessPoolExecutor(max_workers=n, mp_context=multiprocessing.get_context("spawn"))
        try:
            yield pool
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
    elif text.startswith("dask://"):
        with _dask_client(text) as client:
            yield client.get_executor()
    else:
        raise ExecutorError(f"unknown executor {spec!r}; valid forms: {', '.join(EXECUTOR_FORMS)}")


def _n_workers(text: str) -> int:
    if text == "processes":
        return DEFAULT_PROCESSES
    count = text.partition(":")[2]
    if not count.isdigit() or int(count) < 1:
        raise ExecutorError(f"executor {text!r}: N in processes:N must be a positive integer")
    return int(count)


@contextlib.contextmanager
def _dask_client(spec: str) -> Iterator[Any]:
    address = spec.removeprefix("dask://")
    if not address or "://" in address:
        raise ExecutorError(f"executor {spec!r}: write dask://HOST:PORT")
    try:
        from distributed import Client
    except ImportError as err:  # pragma: no cover - distributed is a dependency
        raise ExecutorError("the dask executor needs the 'distributed' package: pip install distributed") from err
    try:
        client = Client(f"tcp://{address}", timeout=f"{DASK_TIMEOUT_S}s", set_as_default=False)
    except (OSError, TimeoutError, ValueError) as err:
        raise ExecutorError(
            f"cannot reach the Dask scheduler at {spec} within {DASK_TIMEOUT_S:.0f} s; "
            "check the address and that the scheduler is running"
        ) from err
    try:
        yield client
    finally:
        client.close()


_threads_lock = threading.Lock()
_threads_state = {"active": 0, "saved": 0, "hf_bars": True}


def call_unit(fn: Callable[..., list[dict[str, Any]]], kwargs: Mapping[str, Any]) -> tuple[list[dict], dict]:
    """Runs one unit with one torch thread (restored after); returns its rows and where/how long it ran.

    This is what executors run: a module-level function, so every executor can pickle it. The torch
    thread count is per process, so when units share a process (a Dask worker with several threads) it
    is restored only after the last of them finishes: no unit ever runs multi-threaded. transformers'
    weight loading and saving bars are off meanwhile (units are batch work; their bars only fill worker
    logs), restored likewise. A low glibc trim threshold (Dask workers' default) is raised first, see
    ``modlens.allocator``.
    """
    import torch
    from transformers.utils import logging as hf_logging

    relax_low_trim_threshold()
    with _threads_lock:
        if _threads_state["active"] == 0:
            _threads_state["saved"] = torch.get_num_threads()
            _threads_state["hf_bars"] = hf_logging.is_progress_bar_enabled()
            torch.set_num_threads(1)
            hf_logging.disable_progress_bar()
        _threads_state["active"] += 1
    start, cpu_start = time.perf_counter(), time.thread_time()
    try:
        rows = fn(**kwargs)
    finally:
        with _threads_lock:
            _threads_state["active"] -= 1
            if _threads_state["active"] == 0:
                torch.set_num_threads(_threads_state["saved"])
                if _threads_state["hf_bars"]:
                    hf_logging.enable_progress_bar()
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise TypeError(f"unit function {fn.__module__}.{fn.__qualname__} must return a list of dicts")
    # CPU seconds of the unit's thread (its torch work runs there, single-threaded): unlike wall seconds, they
    # hardly change when other jobs share the machine, so they size a run honestly on a busy machine.
    seconds, cpu_seconds = time.perf_counter() - start, time.thread_time() - cpu_start
    return rows, {"host": platform.node(), "seconds": round(seconds, 3), "cpu_seconds": round(cpu_seconds, 3)}


def run_units(
    units: Sequence[Unit],
    store: Store,
    *,
    executor: "str | cf.Executor" = "local",
    progress: bool = True,
    rerun: Collection[str] = (),
) -> pd.DataFrame:
    """Runs the units not yet in ``store`` on ``executor`` and returns the store's frame.

    Records are written by this process only (one writer), each as soon as its unit finishes. A failing
    unit does not stop the others; once all have finished, the failures are raised together.

    Args:
        units: independent, deterministic units with unique keys.
        store: where records are written; units whose key is done are skipped.
        executor: an ``open_executor`` spec, or an executor already open (left open).
        progress: show a progress bar.
        rerun: keys to run even when done (their records are replaced), e.g. units whose side outputs
            (model files) are gone.

    Returns:
        ``store.frame()``: every record's rows with a ``unit`` column.

    Raises:
        ExecutorError: bad executor spec or unreachable cluster (nothing is written).
        UnitsFailedError: some units raised (named in the message); the rest are recorded, so rerunning with
            the same store runs only the failed ones.
    """
    keys = [u.key for u in units]
    if len(set(keys)) != len(keys):
        dupes = sorted({k for k in keys if keys.count(k) > 1})
        raise ModlensError(f"unit keys must be unique; repeated: {', '.join(dupes[:5])}")
    name = executor if isinstance(executor, str) else type(executor).__name__
    done = store.done() - set(rerun)
    todo = [u for u in units if u.key not in done]
    log.info("%d units, %d already in the store, %d to run on %s", len(units), len(units) - len(todo), len(todo), name)
    if not todo:
        return store.frame()
    context = provenance(executor=name)
    failures: dict[str, BaseException] = {}
    bar = progress_bar(total=len(units), initial=len(units) - len(todo), enabled=progress, unit="unit", desc="units")

    def finish(future: cf.Future, unit: Unit) -> None:
        try:
            rows, where = future.result()
        except Exception as err:
            # The traceback is for bugs in unit code; shown with ``modlens -v``.
            log.warning(
                "unit %s failed: %s: %s", unit.key, type(err).__name__, err, exc_info=log.isEnabledFor(logging.INFO)
            )
            failures[unit.key] = err
        else:
            finished = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
            meta = {**unit.meta, "provenance": {**context, **where, "finished": finished}}
            store.write(unit.key, rows, meta=meta)
        bar.update(1)

    try:
        opened = open_executor(executor) if isinstance(executor, str) else contextlib.nullcontext(executor)
        with opened as pool:
            # Futures report themselves here when done (from executor threads); only this thread writes records.
            finished: queue.SimpleQueue[tuple[cf.Future, Unit]] = queue.SimpleQueue()
            recorded = 0
            for unit in todo:
                future = pool.submit(call_unit, unit.fn, dict(unit.kwargs))
                future.add_done_callback(lambda f, u=unit: finished.put((f, u)))  # type: ignore[misc]
                # Record what has already finished (all of it, for the in-process executor) before going on.
                while not finished.empty():
                    finish(*finished.get())
                    recorded += 1
            while recorded < len(todo):
                finish(*finished.get())
                recorded += 1
    finally:
        bar.close()
    if failures:
        first = next(iter(failures.values()))
        listed = "; ".join(f"{k} ({type(e).__name__}: {_one_line(e)})" for k, e in sorted(failures.items())[:3])
        more = f" and {len(failures) - 3} more" if len(failures) > 3 else ""
        raise UnitsFailedError(
            f"{len(failures)} of {len(todo)} units failed: {listed}{more}; the others are saved in "
            f"{str(store.root)!r}, rerun with --resume to retry the failed ones",
            failures,
        ) from first
    return store.frame()


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return text if len(text) <= 200 else text[:197] + "..."


def demo_unit(*, seed: int, n: int = 4, delay: float = 0.0, fail: bool = False) -> list[dict[str, Any]]:
    """A tiny deterministic unit (seeded torch draws) for trying executors and for tests.

    Args:
        seed: the seed of the draws.
        n: number of rows.
        delay: seconds to sleep first (to simulate slow work).
        fail: raise instead of returning.
    """
    import torch

    if delay:
        time.sleep(delay)
    if fail:
        raise RuntimeError(f"demo unit {seed} failed on purpose")
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 16, generator=gen)
    w = torch.randn(16, 16, generator=gen)
    y = (x @ w).tanh().sum(dim=1)
    return [{"seed": seed, "i": i, "value": float(v)} for i, v in enumerate(y.tolist())]
