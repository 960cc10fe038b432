"""Ablation: the ``ablate`` context manager, exact sweeps and attribution screens (built on
``modlens.interventions``)."""

from modlens.ablation.attribution import (
    AttributionCheck,
    check_attribution,
    compare_attribution,
    run_attribution_patching,
)
from modlens.ablation.hooks import ablate, ablation_hooks
from modlens.ablation.loop import run_ablation_loop
from modlens.ablation.sweep import DEFAULT_MEMORY_BUDGET, run_ablation_sweep

__all__ = [
    "DEFAULT_MEMORY_BUDGET",
    "AttributionCheck",
    "ablate",
    "ablation_hooks",
    "check_attribution",
    "compare_attribution",
    "run_ablation_loop",
    "run_ablation_sweep",
    "run_attribution_patching",
]
