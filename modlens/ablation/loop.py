"""The plain ablation loop: one ``bridge.run_with_hooks`` per component. The reference the sweep must equal."""

from collections.abc import Sequence

import pandas as pd
import torch

from modlens.ablation.hooks import hooks_from_reference, reference_activations
from modlens.ablation.methods import Method, needs_reference
from modlens.ablation.sweep import metric_name, sweep_frame
from modlens.components import Component
from modlens.models import Model
from modlens.tasks import Batch
from modlens.tasks.metrics import Metric, loss


@torch.no_grad()
def run_ablation_loop(
    model: Model,
    batch: Batch,
    components: Sequence[Component],
    *,
    method: Method = "mean",
    metric: Metric = loss,
    reference: Batch | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """``run_ablation_sweep``'s result the slow, obvious way: a full hooked forward per component.

    Same arguments and frame as ``run_ablation_sweep``; use it to check the sweep, or as the baseline in
    benchmarks.
    """
    for c in components:
        c.check(model.spec)
    bridge = model.bridge
    tokens = batch.tokens.to(model.device)
    batch = batch.to(model.device)
    reference = reference if reference is not None or not needs_reference(method) else batch
    clean = float(metric(bridge(tokens), batch))
    # One cached reference pass for all components, as TransformerLens's patching helpers take a cache.
    refs = reference_activations(model, reference, components) if reference is not None and components else {}
    ablated = []
    for c in components:
        hooks = hooks_from_reference([c], method=method, reference=refs, seed=seed)
        ablated.append(float(metric(bridge.run_with_hooks(tokens, fwd_hooks=hooks), batch)))
    return sweep_frame(components, clean, ablated, method=method, metric=metric_name(metric))
