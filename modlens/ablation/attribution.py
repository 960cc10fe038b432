"""Attribution patching: a first-order estimate of every component's ablation effect from one forward and
one backward pass, and a check of the estimate against exact ablations.

The effect of replacing an activation ``a`` by ``a'`` on a metric ``M`` is estimated as
``(a' - a) · ∂M/∂a`` (Nanda 2023, "Attribution Patching"; Syed et al. 2023, "Attribution Patching
Outperforms Automated Circuit Discovery"). It is exact when ``M`` is linear in ``a`` and degrades with
curvature, so it is a screen: always report it beside its agreement with exact results.
Accuracy metrics have zero gradient almost everywhere; use ``loss`` or ``logit_diff``.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch

from modlens import names
from modlens.ablation.sweep import metric_name, run_ablation_sweep, sweep_frame
from modlens.components import Component
from modlens.interventions.bridge import component_values, reference_activations
from modlens.interventions.replacements import Replacement, check_replacement, needs_reference, site_builder
from modlens.models import Model
from modlens.tasks import Batch
from modlens.tasks.metrics import Metric, loss


def run_attribution_patching(
    model: Model,
    batch: Batch,
    components: Sequence[Component],
    *,
    replacement: Replacement = "mean",
    metric: Metric = loss,
    reference: Batch | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """Estimates each component's ablation effect to first order; the frame of ``run_ablation_sweep``.

    ``change`` is the estimate ``(replacement - activation) · gradient`` summed over the batch, positions
    and the component's units; ``ablated`` is ``clean + change``.

    Args:
        model: the model (the bridge runs one forward and one backward pass).
        batch: inputs the metric is measured on.
        components: components to estimate.
        replacement: the ablation whose effect is estimated (``"zero"``, ``"mean"`` or ``"resample"``).
        metric: a differentiable ``metric(logits, batch) -> scalar``.
        reference: batch supplying mean/resample values; defaults to ``batch`` (no extra pass).
        seed: resample seed.
    """
    build = site_builder(replacement, batch=batch, reference=reference, seed=seed, allowed=names.REPLACEMENTS)
    for c in components:
        c.check(model.spec)
    batch = batch.to(model.device)
    hooks = sorted({c.hook_name for c in components})
    clean, acts, grad = activations_and_gradients(model, batch, hooks, metric)
    if not components:
        return sweep_frame([], clean, [], replacement=replacement, metric=metric_name(metric))
    refs: dict[Component, torch.Tensor] = {}
    if needs_reference(replacement):
        if reference is None or reference is batch:
            refs = {c: component_values(acts[c.hook_name], c) for c in components}
        else:
            refs = reference_activations(model, reference.tokens, components)
    estimates = []
    for c in components:
        values = component_values(acts[c.hook_name], c)
        new = build(c, refs.get(c))(values)
        estimates.append(float(((new - values) * component_values(grad[c.hook_name], c)).sum()))
    return sweep_frame(
        components, clean, [clean + e for e in estimates], replacement=replacement, metric=metric_name(metric)
    )


def activations_and_gradients(
    model: Model, batch: Batch, hooks: Sequence[str], metric: Metric
) -> tuple[float, dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """The metric, and the activation at each hook in ``hooks`` with the metric's gradient there (one forward
    and one backward pass through the bridge)."""
    acts: dict[str, torch.Tensor] = {}
    probes: dict[str, torch.Tensor] = {}

    def probe(activation: torch.Tensor, hook: Any, *, name: str) -> torch.Tensor:
        # A zero added to the activation: its gradient is the metric's gradient at the activation.
        acts[name] = activation.detach()
        probes[name] = torch.zeros_like(activation, requires_grad=True)
        return activation + probes[name]

    probes_at = [(n, _bind(probe, n)) for n in hooks]
    grads: Sequence[torch.Tensor | None] = []
    with torch.enable_grad():
        logits = model.bridge.run_with_hooks(batch.tokens, fwd_hooks=probes_at)
        value = metric(logits, batch)
        if hooks:
            grads = torch.autograd.grad(value, [probes[n] for n in hooks], allow_unused=True)
    grad = {n: (g if g is not None else torch.zeros_like(acts[n])) for n, g in zip(hooks, grads, strict=True)}
    return float(value.detach()), acts, grad


def _bind(fn: Any, name: str) -> Any:
    def hook(activation: torch.Tensor, hook: Any) -> torch.Tensor:
        return fn(activation, hook, name=name)

    return hook


@dataclass(frozen=True)
class AttributionCheck:
    """How well an attribution estimate agrees with exact ablation.

    Attributes:
        spearman: rank correlation of estimated and exact ``change`` over all components.
        top_k_overlap: share of the estimate's top-k components (by ``|change|``) that are in the exact top-k.
        top_k: the estimate's top-k rows: ``component, estimate, exact, error``.
    """

    spearman: float
    top_k_overlap: float
    top_k: pd.DataFrame


def check_attribution(
    model: Model,
    batch: Batch,
    estimate: pd.DataFrame,
    *,
    exact: pd.DataFrame | None = None,
    top_k: int = 10,
    metric: Metric = loss,
    reference: Batch | None = None,
    seed: int = 0,
    progress: bool = True,
) -> AttributionCheck:
    """Compares an attribution frame with exact ablation; runs the exact sweep when ``exact`` is not given.

    The replacement is read from ``estimate``; pass the metric, reference and seed the estimate used.
    ``progress`` shows the exact sweep's bar.
    """
    from modlens.components import parse_component

    if exact is None:
        components = [parse_component(c, model.spec) for c in estimate["component"]]
        replacement = str(estimate["replacement"].iloc[0]) if len(estimate) else "mean"
        exact = run_ablation_sweep(
            model,
            batch,
            components,
            replacement=check_replacement(replacement, names.REPLACEMENTS),
            metric=metric,
            reference=reference,
            seed=seed,
            progress=progress,
        )
    return compare_attribution(estimate, exact, top_k=top_k)


def compare_attribution(
    estimate: pd.DataFrame, exact: pd.DataFrame, *, top_k: int = 10, key: str = "component"
) -> AttributionCheck:
    """Rank correlation and top-k agreement of two sweep frames, matched on ``key`` (patching frames: ``site``)."""
    both = estimate[[key, "change"]].merge(exact[[key, "change"]], on=key, suffixes=("_estimate", "_exact"))
    both = both.rename(columns={key: "component"})
    both = both.rename(columns={"change_estimate": "estimate", "change_exact": "exact"})
    both["error"] = both["estimate"] - both["exact"]
    # Spearman = Pearson of average ranks (pandas' own spearman needs scipy).
    ranks = both[["estimate", "exact"]].rank()
    spearman = float(ranks["estimate"].corr(ranks["exact"])) if len(both) > 1 else float("nan")
    k = min(top_k, len(both))
    top_est = both.reindex(both["estimate"].abs().sort_values(ascending=False).index).head(k)
    top_exact = set(both.reindex(both["exact"].abs().sort_values(ascending=False).index).head(k)["component"])
    overlap = float(top_est["component"].isin(top_exact).mean()) if k else float("nan")
    return AttributionCheck(spearman=spearman, top_k_overlap=overlap, top_k=top_est.reset_index(drop=True))
