"""The plain ablation loop: one ``bridge.run_with_hooks`` per component. The reference the sweep must equal."""

from collections.abc import Sequence

import pandas as pd

from modlens import names
from modlens.ablation.hooks import run_sites_by_hooks
from modlens.ablation.sweep import metric_name, sweep_frame
from modlens.components import Component
from modlens.interventions.replacements import Replacement, site_builder
from modlens.models import Model
from modlens.tasks import Batch
from modlens.tasks.metrics import Metric, loss


def run_ablation_loop(
    model: Model,
    batch: Batch,
    components: Sequence[Component],
    *,
    replacement: Replacement = "mean",
    metric: Metric = loss,
    reference: Batch | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """``run_ablation_sweep``'s result the slow, obvious way: a full hooked forward per component.

    Same arguments and frame as ``run_ablation_sweep``; use it to check the sweep, or as the baseline in
    benchmarks.
    """
    build = site_builder(replacement, batch=batch, reference=reference, seed=seed, allowed=names.REPLACEMENTS)
    sites = [(c, None) for c in components]
    clean, ablated = run_sites_by_hooks(model, batch, sites, build, metric=metric, reference=reference)
    return sweep_frame(components, clean, ablated, replacement=replacement, metric=metric_name(metric))
