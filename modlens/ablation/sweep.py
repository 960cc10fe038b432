"""Exact ablation sweeps: every component ablated alone, many ablations per forward, the clean prefix reused.

For a component in layer ``l`` nothing below ``l`` changes, so the clean pass is recorded once and each
ablation resumes from layer ``l``: a head's or neuron's removal is an exact additive change to its
layer's attention or MLP output, a whole layer's is a replacement. Ablations of one layer are stacked
along the batch dimension and run through the remaining layers together, in chunks sized to a memory
budget (on CPU, run in small row blocks). Built-in metrics only read logits where an answer is
predicted, so only those positions are unembedded, the sequence is cut after the last one (causal
attention makes that exact), and the last layer computes queries, attention and MLP there alone.
"""

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch

from modlens import names
from modlens.ablation.hooks import run_sites_by_hooks
from modlens.ablation.positions import compact_batch, compact_logits, is_answer_local, predicting_positions
from modlens.components import Component
from modlens.interventions.replacements import (
    Replacement,
    Site,
    SiteBuilder,
    at_position,
    needs_reference,
    site_builder,
)
from modlens.interventions.stack import CleanRun, DecoderStack, LayerRecord
from modlens.models import Model, check_finite
from modlens.models.modules import has_fast_path
from modlens.progress import progress_bar
from modlens.tasks import Batch
from modlens.tasks.metrics import Metric, loss

log = logging.getLogger(__name__)

DEFAULT_MEMORY_BUDGET = 1 << 30
"""Bytes of activations one stacked forward may hold (1 GiB)."""

PROGRESS_DELAY_S = 2.0
"""The progress bar appears once a sweep has run this long (short sweeps stay quiet)."""

COLUMNS = ["component", "layer", "kind", "index", "replacement", "metric", "clean", "ablated", "change"]


def sweep_frame(
    components: Sequence[Component], clean: float, ablated: Sequence[float], *, replacement: str, metric: str
) -> pd.DataFrame:
    """The tidy result of a sweep: one row per component with the clean and ablated metric and the change."""
    labels = {**component_columns(components), "replacement": replacement, "metric": metric}
    return effect_frame(COLUMNS, labels, clean, ablated)


def effect_frame(
    columns: Sequence[str], labels: Mapping[str, Any], before: float, after: Sequence[float]
) -> pd.DataFrame:
    """``labels`` (one entry or one per row) and the metric before and after each edit, in ``columns``: those of
    ``labels``, then the before and after columns, then ``change`` (after minus before)."""
    *_, before_name, after_name, change = columns
    values = {**labels, before_name: float(before), after_name: [float(v) for v in after]}
    frame = pd.DataFrame(values, columns=list(columns[:-1]))
    frame[change] = frame[after_name] - frame[before_name]
    return frame


def component_columns(components: Sequence[Component]) -> dict[str, Any]:
    """The columns naming each row's component: ``component, layer, kind, index`` (nullable)."""
    return {
        "component": [str(c) for c in components],
        "layer": [c.layer for c in components],
        "kind": [c.kind for c in components],
        "index": pd.array([c.index for c in components], dtype="Int64"),
    }


def metric_name(metric: Metric) -> str:
    return str(getattr(metric, "__name__", "metric"))


def bytes_per_ablation(model: Model, n_rows: int, n_pos: int, n_logit_pos: int) -> int:
    """A generous estimate of the activation memory one stacked copy of the batch needs in a forward."""
    s = model.spec
    itemsize = torch.finfo(model.dtype).bits // 8
    per_token = 12 * s.d_model + 4 * s.d_mlp + 3 * s.n_heads * n_pos
    return itemsize * n_rows * (n_pos * per_token + 3 * n_logit_pos * s.d_vocab)


@torch.no_grad()
def run_ablation_sweep(
    model: Model,
    batch: Batch,
    components: Sequence[Component],
    *,
    replacement: Replacement = "mean",
    metric: Metric = loss,
    reference: Batch | None = None,
    seed: int = 0,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    answer_local: bool | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Ablates each component alone; one row per component with the metric and its change from clean.

    Equal to ``run_ablation_loop`` (one ``bridge.run_with_hooks`` per component) up to float rounding,
    and much faster.

    Args:
        model: any model the bridge loads (batched and fast for ``modlens.models.modules.MODULE_PATHS``).
        batch: the inputs the metric is measured on.
        components: what to ablate, one at a time.
        replacement: ``"zero"``, ``"mean"`` or ``"resample"`` (see ``modlens.interventions.replacements``).
        metric: ``metric(logits, batch) -> scalar``; built-ins or any function.
        reference: batch supplying mean/resample values; defaults to ``batch``. Prompts of different lengths
            align on their answers (``modlens.interventions.alignment``), others position by position.
        seed: resample seed.
        memory_budget: bytes of activations one stacked forward may use; ablations are chunked to fit.
        answer_local: whether ``metric`` reads logits only at answer-predicting positions (then only those
            are computed). Default: true for modlens's built-in metrics, false for other functions.
        progress: show a progress bar over the stacked forwards once the sweep has run ``PROGRESS_DELAY_S``
            seconds (see ``modlens.progress``).

    Returns:
        Columns ``component, layer, kind, index, replacement, metric, clean, ablated, change``.
    """
    clean, ablated = run_sites(
        model,
        batch,
        [(c, None) for c in components],
        site_builder(replacement, batch=batch, reference=reference, seed=seed, allowed=names.REPLACEMENTS),
        metric=metric,
        reference=reference if needs_reference(replacement) else None,
        memory_budget=memory_budget,
        answer_local=answer_local,
        progress=progress,
        desc="ablation sweep",
    )
    return sweep_frame(components, clean, ablated, replacement=replacement, metric=metric_name(metric))


@torch.no_grad()
def run_sites(
    model: Model,
    batch: Batch,
    sites: Sequence[Site],
    build: SiteBuilder,
    *,
    metric: Metric,
    reference: Batch | None = None,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    answer_local: bool | None = None,
    progress: bool = True,
    desc: str = "sweep",
) -> tuple[float, list[float]]:
    """The engine of the exact sweeps: the metric with nothing edited, and with each site edited alone.

    Each site's activation is replaced by ``build(component, reference values)`` (at its position only,
    when it has one); the reference run is recorded only when ``reference`` is given and is another batch.
    Architectures without a fast path (``modlens.models.modules``) run one hooked bridge forward per site.
    """
    for c, _ in sites:
        c.check(model.spec)
    if not has_fast_path(model.spec.architecture):
        log.warning(
            "notice: %s has no fast path in modlens; running one bridge forward per site (exact, slower)",
            model.spec.architecture,
        )
        return run_sites_by_hooks(model, batch, sites, build, metric=metric, reference=reference)
    local = is_answer_local(metric) if answer_local is None else answer_local
    batch = batch.to(model.device)
    positions = predicting_positions(batch) if local else torch.arange(batch.n_pos, device=model.device)
    # padding positions need reference values too, so a shorter reference caps the padding
    available = batch.n_pos if reference is None else min(batch.n_pos, reference.n_pos)
    length = _kept_length(int(positions.max()) + 1, available) if local else batch.n_pos
    scored = compact_batch(batch, positions) if local else batch

    def score(logits: torch.Tensor) -> float:
        return float(metric(compact_logits(logits) if local else logits, scored))

    stack = DecoderStack(model)
    block = _block_rows(model, length)
    records = stack.record(batch.tokens[:, :length], block=block)
    clean_logits = stack.logits(records[-1].resid_post[:, positions])
    check_finite(clean_logits, "the model's logits on the unedited batch")
    clean = score(clean_logits)
    if not sites:
        return clean, []

    ref_records = records
    if reference is not None and reference is not batch:
        ref_records = stack.record(reference.tokens[:, :length].to(model.device), block=block)

    n_rows = len(batch)
    last = model.spec.n_layers - 1
    # layers resumed on every position: those above the lowest edited output, from the lowest edited input
    lowest = min(c.layer + (c.kind != "resid") for c, _ in sites)
    run = CleanRun(stack, records, resume_from=lowest, query_positions=positions if local else None)
    chunk = max(1, memory_budget // bytes_per_ablation(model, n_rows, length, len(positions)))
    by_layer: dict[int, list[Site]] = {}
    for site in sites:
        by_layer.setdefault(site[0].layer, []).append(site)
    chunks = [
        (layer, group[i : i + chunk]) for layer, group in sorted(by_layer.items()) for i in range(0, len(group), chunk)
    ]
    results: dict[Site, float] = {}
    bar = progress_bar(chunks, enabled=progress, desc=desc, unit="chunk", delay=PROGRESS_DELAY_S)
    for layer, part in bar:
        rec, ref = records[layer], ref_records[layer]
        w_o, w_out = stack.w_o(layer), stack.w_out(layer)
        for kinds in (("head", "attn"), ("neuron", "mlp"), ("resid",)):
            group = [site for site in part if site[0].kind in kinds]
            if not group:
                continue
            edits = rec.attn_out.new_empty((len(group), *rec.attn_out.shape))
            for (c, position), out in zip(group, edits, strict=True):
                _edit(out, c, position, rec, ref, build, w_o, w_out)
            # where each edit changes anything ([site, pos]); an edit that changes nothing (a patch where both
            # runs agree) leaves the metric clean
            moved = (edits != rec.at(Component(layer, kinds[-1]))).flatten(3).any(dim=3).any(dim=1)
            changed = moved.any(dim=1)
            results |= {site: clean for site, kept in zip(group, changed.tolist(), strict=True) if not kept}
            group, edits, moved = [site for site in group if site not in results], edits[changed], moved[changed]
            if not group:
                continue
            at, first = rec, 0
            if layer == last and kinds[0] != "resid":
                # nothing reads the last layer's other positions: finish it where the metric looks
                edits, at = edits[:, :, positions], rec.take(positions=positions)
            elif local:
                first = _first_edited(moved, int(positions.min()))
            tail = _Tail(run, layer, at, kinds[-1], positions, first)
            flat = edits.flatten(0, 1)
            logits = torch.cat([tail(flat, rows) for rows in _row_blocks(len(flat), block)])
            for site, row in zip(group, logits.unflatten(0, (len(group), n_rows)), strict=True):
                results[site] = score(row)
    return clean, [results[site] for site in sites]


@dataclass(frozen=True)
class _Tail:
    """From one layer's edited attention (or MLP) outputs to logits at the scored positions."""

    run: CleanRun
    layer: int
    record: LayerRecord
    edited: str
    """What the stacked rows replace: the layer's ``"attn"`` or ``"mlp"`` output, or its input (``"resid"``)."""
    positions: torch.Tensor
    first: int
    """The first position any stacked row edits: earlier positions stay clean and are not recomputed."""

    def __call__(self, flat: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """Logits of the stacked rows ``rows`` of ``flat`` (``[ablation * batch, ...]``; batch row = row mod batch)."""
        run, stack, first = self.run, self.run.stack, self.first
        last = len(run.records) - 1
        n_rows = len(self.record.resid_pre)
        edit = flat[int(rows[0]) : int(rows[0]) + len(rows), first:]
        # a block inside one ablation's rows reads the clean record as a view, others gather
        start = int(rows[0]) % n_rows
        batch_rows = slice(start, start + len(rows)) if start + len(rows) <= n_rows else rows % n_rows
        rec = self.record.take(rows=batch_rows)
        if first:
            rec = rec.take(positions=torch.arange(first, rec.resid_pre.shape[1], device=edit.device))
        if self.edited == "resid":
            hidden, start = edit, self.layer
        else:
            attn, mlp = (edit, None) if self.edited == "attn" else (None, edit)
            hidden, start = stack.finish_layer(self.layer, rec.resid_pre, attn, mlp, rec), self.layer + 1
        if start <= last and run.query_path:
            resumed = run.resume(start, hidden, stop=last, first=first, rows=batch_rows)
            whole = stack.with_prefix(last, resumed, run.records, first, batch_rows)
            hidden = stack.last_layer_at(whole, self.positions, run.records)
        elif start <= last:
            resumed = run.resume(start, hidden, first=first, rows=batch_rows)
            hidden = resumed[:, self.positions - first]
        return stack.logits(hidden)


def _first_edited(moved: torch.Tensor, limit: int) -> int:
    """The first position where any site's edit changes anything (``moved``: ``[site, pos]``), at most ``limit``
    (the first scored position)."""
    hits = moved.any(dim=0)[:limit].nonzero()
    return int(hits[0]) if len(hits) else limit


_CPU_BLOCK_BYTES = 2 << 20
"""Largest activation a CPU forward block aims at (2 MiB), unless that leaves fewer than ``_MIN_BLOCK_TOKENS``."""
_MIN_BLOCK_TOKENS = 256


def _block_rows(model: Model, length: int) -> int | None:
    """Rows per forward on CPU, keeping activations small; ``None`` (the whole chunk) on other devices.

    On CPU, multi-MB temporaries are often handed back to the OS when freed and faulted in afresh on the
    next forward; the page faults can cost more than the arithmetic (measured on the small benchmark
    model: one layer on 640 rows at once took 1.6x as long as on 128-row blocks). GPUs cache freed
    memory, so they run the whole chunk at once. Blocks keep at least ``_MIN_BLOCK_TOKENS`` tokens so
    matrix products stay efficient. Blocks run one after another on torch's intra-op threads: running them
    side by side on Python threads (one intra-op thread each) was measured on an idle 2-core machine and
    was 12% slower on the small benchmark model, 10% faster on the GPT-2-small shape; not worth a second path.
    """
    if model.device.type != "cpu":
        return None
    s = model.spec
    itemsize = torch.finfo(model.dtype).bits // 8
    widest = max(s.d_mlp, 3 * s.d_model, s.n_heads * length) * length * itemsize
    return max(1, _CPU_BLOCK_BYTES // widest, -(-_MIN_BLOCK_TOKENS // length))


def _row_blocks(n: int, block: int | None) -> list[torch.Tensor]:
    """``range(n)`` split into near-equal consecutive blocks of at most ``block`` rows (one block if ``None``)."""
    count = 1 if block is None else -(-n // block)
    return list(torch.arange(n).tensor_split(count))


def _kept_length(needed: int, n_pos: int) -> int:
    """Positions to keep: through the last scored one, but at least 16 (or all ``n_pos``, when fewer).

    Causal attention makes later positions irrelevant. Keys shorter than 16 save little and cost much:
    torch's CPU softmax runs a scalar loop when its last dimension is shorter than one SIMD vector
    (16 floats under AVX-512), about 10x slower than at 16.
    """
    return max(needed, min(n_pos, 16))


def _edit(
    out: torch.Tensor,
    c: Component,
    position: int | None,
    rec: LayerRecord,
    ref: LayerRecord,
    build: SiteBuilder,
    w_o: torch.Tensor,
    w_out: torch.Tensor,
) -> None:
    """Writes to ``out`` the attention output (heads, attn), MLP output (neurons, mlp) or input (resid) of
    ``c``'s layer with ``c`` replaced (at ``position`` alone when given)."""
    values = rec.at(c)
    replace = build(c, ref.at(c))
    # a position past the kept length cannot reach a scored logit (causal attention): at_position leaves it
    new = (replace if position is None else at_position(replace, position))(values).to(values.dtype)
    if c.kind == "head":
        d = out.shape[-1]
        flat = (new - values).flatten(0, -2)
        torch.addmm(rec.attn_out.reshape(-1, d), flat, w_o[c.index], out=out.view(-1, d))
    elif c.kind == "neuron":
        torch.addcmul(rec.mlp_out, (new - values).unsqueeze(-1), w_out[c.index], out=out)
    else:
        out.copy_(new.expand_as(values))
