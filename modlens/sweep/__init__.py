"""Scripted sweeps: a TOML grid of ablation, mask and drift jobs run as units on any executor into a store."""

from modlens.sweep.grid import STORE_KIND, expand, run_sweep, unit_key
from modlens.sweep.spec import (
    JOB_KINDS,
    AblationJob,
    DriftJob,
    MaskJob,
    SweepSpec,
    load_sweep,
    parse_sweep,
)

__all__ = [
    "JOB_KINDS",
    "STORE_KIND",
    "AblationJob",
    "DriftJob",
    "MaskJob",
    "SweepSpec",
    "expand",
    "load_sweep",
    "parse_sweep",
    "run_sweep",
    "unit_key",
]
