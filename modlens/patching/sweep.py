"""Activation patching between clean and corrupted runs: exact sweeps, the plain hook loop, attribution.

Noising runs the clean prompts and patches in one component's activation from the corrupted run;
denoising runs the corrupted prompts and patches in the clean activation (Heimersheim & Nanda 2024, "How
to use and interpret activation patching"). Each component is patched alone, at every position at once
or at one position at a time, on the exact engine of the ablation sweep (``modlens.ablation.sweep``).
"""

from collections.abc import Sequence
from typing import Literal

import pandas as pd
import torch

from modlens.ablation.attribution import activations_and_gradients
from modlens.ablation.hooks import run_sites_by_hooks
from modlens.ablation.sweep import DEFAULT_MEMORY_BUDGET, component_columns, effect_frame, metric_name, run_sites
from modlens.components import Component
from modlens.errors import TaskError
from modlens.interventions.bridge import component_values, reference_activations
from modlens.interventions.replacements import Site, site_builder
from modlens.models import Model
from modlens.patching.metric import patching_metric
from modlens.patching.pairs import PatchingBatch
from modlens.tasks.batch import Batch
from modlens.tasks.metrics import Metric

Direction = Literal["noising", "denoising"]
DIRECTIONS: tuple[Direction, ...] = ("noising", "denoising")

Positions = Literal["each"] | Sequence[int] | None
"""``None``: each component patched at every position at once; ``"each"``: at every prompt position, one at a
time; a list: at those positions, one at a time."""

COLUMNS = [
    "site",
    "component",
    "layer",
    "kind",
    "index",
    "position",
    "direction",
    "metric",
    "unpatched",
    "patched",
    "change",
]


def patch_sites(pairs: PatchingBatch, components: Sequence[Component], positions: Positions) -> list[Site]:
    """Every component at every requested position (see ``Positions``).

    Raises:
        TaskError: positions asked of pairs of different lengths, or a position outside the prompts.
    """
    if positions is None:
        return [(c, None) for c in components]
    lengths = pairs.lengths
    if not pairs.equal_lengths:
        raise TaskError(
            f"per-position patching needs pairs of one token length (these are {int(lengths.min())} to "
            f"{int(lengths.max())} tokens): write prompts of equal length, or patch whole components"
        )
    n_prompt = int(lengths[0]) - 1  # the last token is the answer, which no scored logit reads
    chosen = list(range(n_prompt)) if isinstance(positions, str) else [int(p) for p in positions]
    if isinstance(positions, str) and positions != "each":
        raise TaskError(f"unknown positions {positions!r}; give 'each' or a list of positions")
    bad = [p for p in chosen if not 0 <= p < n_prompt]
    if bad:
        raise TaskError(f"positions {bad} are outside the prompts, which have positions 0..{n_prompt - 1}")
    return [(c, p) for c in components for p in chosen]


def runs(pairs: PatchingBatch, direction: Direction) -> tuple[Batch, Batch]:
    """The run that is patched and the run its activations come from."""
    if direction not in DIRECTIONS:
        raise TaskError(f"unknown direction {direction!r}; choose one of {', '.join(DIRECTIONS)}")
    return (pairs.clean, pairs.corrupt) if direction == "noising" else (pairs.corrupt, pairs.clean)


def patching_frame(
    sites: Sequence[Site], unpatched: float, patched: Sequence[float], *, direction: str, metric: str
) -> pd.DataFrame:
    """One row per site with the metric unpatched and patched and the change."""
    labels = {
        "site": [str(c) if p is None else f"{c}@{p}" for c, p in sites],
        **component_columns([c for c, _ in sites]),
        "position": pd.array([p for _, p in sites], dtype="Int64"),
        "direction": direction,
        "metric": metric,
    }
    return effect_frame(COLUMNS, labels, unpatched, patched)


def _setup(
    model: Model,
    pairs: PatchingBatch,
    components: Sequence[Component],
    positions: Positions,
    direction: Direction,
    metric: Metric | None,
) -> tuple[Metric, list[Site], Batch, Batch]:
    """The metric (default: normalised on ``model``), the sites, the patched run and its source run."""
    run, source = runs(pairs.to(model.device), direction)
    return metric or patching_metric(model, pairs), patch_sites(pairs, components, positions), run, source


@torch.no_grad()
def run_patching_sweep(
    model: Model,
    pairs: PatchingBatch,
    components: Sequence[Component],
    *,
    positions: Positions = None,
    direction: Direction = "noising",
    metric: Metric | None = None,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    progress: bool = True,
) -> pd.DataFrame:
    """Patches each component (at each position) alone; one row per site.

    Equal to ``run_patching_loop`` (one ``bridge.run_with_hooks`` per site) up to float rounding.

    Args:
        model: the model.
        pairs: clean/corrupted pairs (``load_patching_batch``, ``encode_pairs``).
        components: what to patch, one at a time; ``L<l>.resid`` patches the residual stream entering layer l.
        positions: see ``Positions``.
        direction: ``"noising"`` (clean run, corrupted activation) or ``"denoising"`` (the reverse).
        metric: default the normalised logit difference (``patching_metric``): 0 = corrupted, 1 = clean.
            Any other must read only the answer-predicting positions.
        memory_budget: bytes of activations one stacked forward may use.
        progress: show a progress bar once the sweep has run a few seconds.

    Returns:
        Columns ``site, component, layer, kind, index, position, direction, metric, unpatched, patched, change``.
    """
    metric, sites, run, source = _setup(model, pairs, components, positions, direction, metric)
    unpatched, patched = run_sites(
        model,
        run,
        sites,
        site_builder("patch", batch=run, reference=source),
        metric=metric,
        reference=source,
        memory_budget=memory_budget,
        answer_local=True,
        progress=progress,
        desc=f"patching ({direction})",
    )
    return patching_frame(sites, unpatched, patched, direction=direction, metric=metric_name(metric))


@torch.no_grad()
def run_patching_loop(
    model: Model,
    pairs: PatchingBatch,
    components: Sequence[Component],
    *,
    positions: Positions = None,
    direction: Direction = "noising",
    metric: Metric | None = None,
) -> pd.DataFrame:
    """``run_patching_sweep``'s result the plain way: the source run cached once, then one hooked forward per site."""
    metric, sites, run, source = _setup(model, pairs, components, positions, direction, metric)
    build = site_builder("patch", batch=run, reference=source)
    unpatched, patched = run_sites_by_hooks(model, run, sites, build, metric=metric, reference=source)
    return patching_frame(sites, unpatched, patched, direction=direction, metric=metric_name(metric))


def run_attribution_patching_pairs(
    model: Model,
    pairs: PatchingBatch,
    components: Sequence[Component],
    *,
    positions: Positions = None,
    direction: Direction = "noising",
    metric: Metric | None = None,
) -> pd.DataFrame:
    """The first-order estimate of ``run_patching_sweep``: ``(source - activation) · gradient`` per site.

    One forward and one backward pass on the patched run, one cached forward on the source run (Nanda 2023,
    "Attribution Patching"). The frame of ``run_patching_sweep`` with ``patched = unpatched + estimate``;
    compare it with the exact sweep (``compare_attribution(..., key="site")``) before trusting it.
    """
    metric, sites, run, source = _setup(model, pairs, components, positions, direction, metric)
    for c in components:
        c.check(model.spec)
    hooks = sorted({c.hook_name for c in components})
    unpatched, acts, grads = activations_and_gradients(model, run, hooks, metric)
    cached = reference_activations(model, source.tokens, components) if components else {}
    build = site_builder("patch", batch=run, reference=source)
    per_position = {}
    for c in components:
        live = component_values(acts[c.hook_name], c)
        product = (build(c, cached[c])(live) - live) * component_values(grads[c.hook_name], c)
        per_position[c] = product.flatten(2).sum(dim=(0, 2)) if product.ndim > 2 else product.sum(dim=0)
    estimates = [float(per_position[c].sum() if p is None else per_position[c][p]) for c, p in sites]
    return patching_frame(
        sites, unpatched, [unpatched + e for e in estimates], direction=direction, metric=metric_name(metric)
    )
