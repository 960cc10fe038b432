"""Independent pieces of torch work on several Python threads, each on one intra-op thread (the weight
drift decomposes base and tuned matrices side by side).

On a few CPU cores, small tensor operations gain little from torch's intra-op threads: every operation
ends at an OpenMP barrier, and the threads spin there, which costs the most when other processes share
the cores (a two-thread ``eigh`` of a 768 x 768 matrix measured 0.12 s on one thread and 23 s on two on a
busy 2-core machine). Independent work items on separate Python threads keep every core busy instead;
torch releases the GIL inside its kernels.
"""

import contextlib
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import torch

_T = TypeVar("_T")
_R = TypeVar("_R")


@contextlib.contextmanager
def single_threaded() -> Iterator[None]:
    """Holds torch at one intra-op thread (a process-wide setting) for the enclosed code, restoring it after."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def parallel_map(fn: Callable[[_T], _R], items: Iterable[_T], workers: int) -> list[_R]:
    """``[fn(x) for x in items]``, on ``workers`` Python threads with torch on one intra-op thread each.

    With one worker or one item it simply runs in this thread, leaving the thread setting alone. ``fn``
    must not change the thread setting itself: a worker can read a stale value and would restore it for
    the whole process.
    """
    work = list(items)
    if workers <= 1 or len(work) <= 1:
        return [fn(x) for x in work]
    with single_threaded(), ThreadPoolExecutor(max_workers=min(workers, len(work))) as pool:
        return list(pool.map(fn, work))
