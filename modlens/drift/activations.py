"""Activation drift between a base and a fine-tuned model on the same inputs, streamed over minibatches."""

import contextlib
import logging
from collections.abc import Sequence
from functools import partial
from typing import Literal

import pandas as pd
import torch

from modlens._typing import Bool, Float, Tensor
from modlens.components import Point, point_hook
from modlens.drift.cka import feature_gram_moments, hsic_terms
from modlens.errors import PairMismatchError, TaskError
from modlens.interventions.bridge import bridge_activations
from modlens.interventions.capture import recording
from modlens.models import Model, check_finite, check_pair
from modlens.models.modules import has_fast_path
from modlens.progress import progress_bar
from modlens.tasks import Batch

log = logging.getLogger(__name__)

Measure = Literal["linear_cka", "debiased_cka", "cosine", "rel_change"]
MEASURES: tuple[Measure, ...] = ("linear_cka", "debiased_cka", "cosine", "rel_change")
HOOKS: tuple[Point, ...] = ("resid_post", "attn_out", "mlp_out")
_HOOKS_PER_STEP = 6


def run_activation_drift(
    base: Model,
    tuned: Model,
    batch: Batch,
    *,
    measures: Sequence[str] = ("linear_cka", "debiased_cka", "cosine"),
    batch_size: int = 8,
    progress: bool = False,
) -> pd.DataFrame:
    """Similarity of ``base`` and ``tuned`` activations per layer and hook, on the same token batch.

    Examples are token positions: each real (non-padding) position of each sequence is one row of the
    ``[examples, d_model]`` activation matrices compared. Padding after a sequence's last answer token is
    left out. Sequences are streamed ``batch_size`` at a time and every measure is accumulated per
    minibatch, so memory does not grow with the number of sequences.

    Measures (one column each):
        linear_cka: minibatch linear CKA with the biased HSIC (equal to ``linear_cka`` of all rows when
            ``batch`` fits in one minibatch).
        debiased_cka: minibatch CKA with the unbiased HSIC (Nguyen et al. 2021), a consistent estimate of
            the full-data debiased CKA.
        cosine: mean cosine between base and tuned activations at the same position.
        rel_change: ``mean ‖y − x‖ / mean ‖x‖`` over positions.

    Args:
        base: the model before fine-tuning.
        tuned: the model after; same architecture and tokenizer.
        batch: the inputs, right-padded (as ``Batch`` always is).
        measures: which of ``MEASURES`` to compute.
        batch_size: sequences per minibatch (each minibatch needs at least 4 positions for CKA).
        progress: show a progress bar.

    Returns:
        One row per ``layer`` and ``hook`` (``resid_post``, ``attn_out``, ``mlp_out``), with ``n_tokens``
        and a column per measure.

    Raises:
        PairMismatchError: different architectures or shapes, or different tokenizers.
        TaskError: an empty batch, unknown measures, or a non-positive ``batch_size``.
    """
    check_pair(base, tuned)
    check_tokenizers(base, tuned)
    unknown = [m for m in measures if m not in MEASURES]
    if unknown or not measures:
        raise TaskError(f"unknown measures {unknown}; choose from {', '.join(MEASURES)}")
    if batch_size <= 0:
        raise TaskError(f"batch_size must be positive, got {batch_size}")
    if len(batch) == 0:
        raise TaskError("the batch holds no sequences")
    n_layers, d_model = base.spec.n_layers, base.spec.d_model
    names = [(layer, hook) for layer in range(n_layers) for hook in HOOKS]
    stats = _Accumulator(measures, len(names))
    valid_all = real_positions(batch.answer_mask)
    with torch.no_grad():
        for start in progress_bar(range(0, len(batch), batch_size), enabled=progress, desc="activation drift"):
            tokens = batch.tokens[start : start + batch_size]
            valid = valid_all[start : start + batch_size].reshape(-1).to(base.device)
            acts0 = _activations(base, tokens).flatten(1, 2)
            acts1 = _activations(tuned, tokens).flatten(1, 2)
            check_finite(acts0, "the base model's activations on this batch")
            check_finite(acts1, "the tuned model's activations on this batch")
            if not bool(valid.all()):
                acts0, acts1 = acts0[:, valid], acts1[:, valid]
            stats.update(acts0.reshape(len(names), -1, d_model), acts1.reshape(len(names), -1, d_model))
            del acts0, acts1
    results = stats.result()
    rows = [
        {"layer": layer, "hook": hook} | {k: v[i] for k, v in results.items()} for i, (layer, hook) in enumerate(names)
    ]
    return pd.DataFrame(rows, columns=["layer", "hook", "n_tokens", *measures])


def check_tokenizers(base: Model, tuned: Model) -> None:
    """Raises ``PairMismatchError`` when both models carry tokenizers that map tokens to different ids."""
    if base.tokenizer is None or tuned.tokenizer is None:
        return
    if base.tokenizer.get_vocab() != tuned.tokenizer.get_vocab():
        v0, v1 = base.tokenizer.get_vocab(), tuned.tokenizer.get_vocab()
        differ = sorted(set(v0.items()) ^ set(v1.items()))
        raise PairMismatchError(
            f"base and tuned tokenizers differ ({len(v0)} vs {len(v1)} tokens, {len(differ)} differing entries, "
            f"e.g. {differ[0][0]!r}); the same token ids would mean different text"
        )


def real_positions(answer_mask: Bool[Tensor, "batch pos"]) -> Bool[Tensor, "batch pos"]:
    """Positions up to each sequence's last answer token (all positions for a row with no answer):
    ``Batch`` pads on the right, after the answer."""
    n_pos = answer_mask.shape[1]
    idx = torch.arange(n_pos, device=answer_mask.device)
    last = torch.where(answer_mask, idx, -1).max(dim=1).values
    last = torch.where(last < 0, n_pos - 1, last)
    return idx[None, :] <= last[:, None]


class _StopForward(Exception):
    """Raised by the last hook to skip the final norm and unembedding, which drift never reads."""


def _activations(model: Model, tokens: Tensor) -> Float[Tensor, "hook batch pos d_model"]:
    """Every layer's activations at the drift hooks, as float32, stacked in ``(layer, HOOKS)`` order.

    On the fast path, forward hooks on the Hugging Face modules (``modlens.interventions.capture``), not the
    bridge: the same values (see the tests) without the bridge's per-component overhead, and the forward stops
    after the last layer. Other architectures read the bridge's hooks.
    """
    points = [(layer, hook) for layer in range(model.spec.n_layers) for hook in HOOKS]
    if not has_fast_path(model.spec.architecture):
        cache = bridge_activations(model, tokens, [point_hook(layer, point) for layer, point in points])
        return torch.stack([value.float() for value in cache.values()])
    last = points.index((model.spec.n_layers - 1, "resid_post"))
    out = torch.empty(len(points), *tokens.shape, model.spec.d_model, dtype=torch.float32, device=model.device)
    fired = [False] * len(out)

    def keep(index: int, value: Tensor) -> None:
        out[index].copy_(value)
        fired[index] = True
        if index == last:  # the last layer's output: nothing after it is read
            raise _StopForward

    with recording(model, points, keep), contextlib.suppress(_StopForward):
        model.hf(input_ids=tokens.to(model.device), use_cache=False)
    if not all(fired):
        raise RuntimeError(f"{fired.count(False)} activation hooks never fired on {model.spec.architecture}")
    return out


class _Accumulator:
    """Streaming statistics of every (layer, hook) pair at once: each field has one entry per pair.

    The sums move to the activations' device on the first minibatch, so updates never copy between devices.
    """

    def __init__(self, measures: Sequence[str], n_hooks: int) -> None:
        self.measures = measures
        zeros = partial(torch.zeros, n_hooks, dtype=torch.float64)
        self.linear, self.debiased = zeros(3), zeros(3)  # HSIC(K, L), HSIC(K, K), HSIC(L, L) summed over minibatches
        self.cos_sum, self.diff_norm_sum, self.base_norm_sum = zeros(), zeros(), zeros()
        self.n_tokens = 0

    def update(self, x: Float[Tensor, "hook batch d_model"], y: Float[Tensor, "hook batch d_model"]) -> None:
        if self.cos_sum.device != x.device:
            for name in ("linear", "debiased", "cos_sum", "diff_norm_sum", "base_norm_sum"):
                setattr(self, name, getattr(self, name).to(x.device))
        if x.shape[1] < 4 and "debiased_cka" in self.measures:
            log.warning("a minibatch of %d positions is too small for debiased CKA; skipped", x.shape[1])
        # A few hooks at a time: the temporaries (centred copies, cosine terms) stay a fraction of the batch.
        for start in range(0, x.shape[0], _HOOKS_PER_STEP):
            part = slice(start, start + _HOOKS_PER_STEP)
            self._update(part, x[part], y[part])
        self.n_tokens += int(x.shape[1])

    def _update(self, part: slice, x: Tensor, y: Tensor) -> None:
        if "linear_cka" in self.measures or "debiased_cka" in self.measures:
            # One pair of Gram matrices per hook serves both estimators. Centring the columns first changes
            # no HSIC estimate but keeps the float32 products accurate (see MinibatchCKA.update).
            moments = feature_gram_moments(x - x.mean(1, keepdim=True), y - y.mean(1, keepdim=True))
            if "linear_cka" in self.measures:
                self.linear[part] += hsic_terms(moments, debiased=False)
            if "debiased_cka" in self.measures and x.shape[1] >= 4:
                self.debiased[part] += hsic_terms(moments, debiased=True)
        if "cosine" in self.measures:
            self.cos_sum[part] += torch.nn.functional.cosine_similarity(x, y, dim=-1).double().sum(-1)
        if "rel_change" in self.measures:
            self.diff_norm_sum[part] += (y - x).norm(dim=-1).double().sum(-1)
            self.base_norm_sum[part] += x.norm(dim=-1).double().sum(-1)

    def result(self) -> dict[str, list[float] | list[int]]:
        n_hooks = len(self.cos_sum)
        values: dict[str, list[float] | list[int]] = {"n_tokens": [self.n_tokens] * n_hooks}
        for name, hsic in (("linear_cka", self.linear), ("debiased_cka", self.debiased)):
            denom = (hsic[:, 1] * hsic[:, 2]).sqrt()
            values[name] = torch.where(denom > 0, hsic[:, 0] / denom, torch.nan).tolist()
        values["cosine"] = (self.cos_sum / max(self.n_tokens, 1)).tolist()
        ratio = self.diff_norm_sum / self.base_norm_sum
        values["rel_change"] = torch.where(self.base_norm_sum > 0, ratio, torch.nan).tolist()
        return {k: v for k, v in values.items() if k == "n_tokens" or k in self.measures}
