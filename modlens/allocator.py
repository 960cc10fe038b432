"""Undo a low glibc trim threshold in worker processes, which makes torch's CPU allocations slow.

Dask's nanny starts every worker with ``MALLOC_TRIM_THRESHOLD_=65536`` (its ``pre-spawn-environ`` default,
meant to hand freed memory back to the OS). Setting that variable also freezes glibc's mmap threshold at
128 KiB, so each activation tensor above it is a fresh ``mmap`` whose pages fault in on first touch and go
back with ``munmap`` when freed. Measured here: 150 pretraining steps of the family model took 3.4 s in a
plain process and 7.1-8.3 s with the variable set; units inside Dask workers ran about 1.9x slower than the
same units in-process. Raising both thresholds back to the ceilings glibc's dynamic thresholds would reach
anyway restores the plain-process speed and keeps at most a few tens of MiB of freed memory in the process.
"""

import ctypes
import ctypes.util
import os

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's DEFAULT_MMAP_THRESHOLD_MAX on 64-bit
TRIM_THRESHOLD = 2 * MMAP_THRESHOLD  # glibc's own rule when the mmap threshold grows dynamically
_state = {"done": False}


def relax_low_trim_threshold() -> bool:
    """Once per process: when ``$MALLOC_TRIM_THRESHOLD_`` is set below ``TRIM_THRESHOLD`` on glibc, raise the
    mmap and trim thresholds (``mallopt``). Returns whether it changed anything."""
    if _state["done"]:
        return False
    _state["done"] = True
    value = os.environ.get("MALLOC_TRIM_THRESHOLD_", "")
    if not value.isdigit() or int(value) >= TRIM_THRESHOLD:
        return False
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False  # not glibc: nothing to undo
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
