"""Activation drift between a base and a fine-tuned model on the same inputs, streamed over minibatches."""

import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal

import pandas as pd
import torch

from modlens._typing import Bool, Tensor
from modlens.drift.cka import MinibatchCKA
from modlens.errors import PairMismatchError, TaskError
from modlens.models import Model, check_pair
from modlens.progress import progress_bar
from modlens.tasks import Batch

log = logging.getLogger(__name__)

Measure = Literal["linear_cka", "debiased_cka", "cosine", "rel_change"]
MEASURES: tuple[Measure, ...] = ("linear_cka", "debiased_cka", "cosine", "rel_change")
HOOKS = ("resid_post", "attn_out", "mlp_out")


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
    n_layers = base.spec.n_layers
    names = [(layer, hook) for layer in range(n_layers) for hook in HOOKS]
    stats = {key: _Accumulator(measures) for key in names}
    valid_all = real_positions(batch.answer_mask)
    with torch.no_grad():
        for start in progress_bar(range(0, len(batch), batch_size), enabled=progress, desc="activation drift"):
            tokens = batch.tokens[start : start + batch_size]
            valid = valid_all[start : start + batch_size].reshape(-1).to(base.device)
            acts0 = _activations(base, tokens, n_layers)
            acts1 = _activations(tuned, tokens, n_layers)
            for key in names:
                x = acts0.pop(key).reshape(-1, base.spec.d_model)[valid]
                y = acts1.pop(key).reshape(-1, base.spec.d_model)[valid]
                stats[key].update(x, y)
    rows = [{"layer": layer, "hook": hook, **stats[(layer, hook)].result()} for layer, hook in names]
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


def _activations(model: Model, tokens: Tensor, n_layers: int) -> dict[tuple[int, str], Tensor]:
    """Every layer's ``[batch, pos, d_model]`` activations at the drift hooks, as float32."""
    store: dict[tuple[int, str], Tensor] = {}

    def keep(act: Tensor, hook: Any, key: tuple[int, str]) -> None:
        store[key] = act.detach().to(torch.float32)
        if len(store) == n_layers * len(HOOKS):
            raise _StopForward

    hooks = [
        (f"blocks.{layer}.hook_{hook}", partial(keep, key=(layer, hook))) for layer in range(n_layers) for hook in HOOKS
    ]
    with contextlib.suppress(_StopForward):  # the bridge removes its hooks on the way out
        model.bridge.run_with_hooks(tokens.to(model.device), fwd_hooks=hooks)
    missing = n_layers * len(HOOKS) - len(store)
    if missing:
        raise RuntimeError(f"{missing} activation hooks never fired on {model.spec.architecture}")
    return store


@dataclass
class _Accumulator:
    """Streaming statistics of one (layer, hook) pair."""

    measures: Sequence[str]
    linear: MinibatchCKA = field(default_factory=lambda: MinibatchCKA(debiased=False))
    debiased: MinibatchCKA = field(default_factory=lambda: MinibatchCKA(debiased=True))
    cos_sum: float = 0.0
    diff_norm_sum: float = 0.0
    base_norm_sum: float = 0.0
    n_tokens: int = 0

    def update(self, x: Tensor, y: Tensor) -> None:
        if "linear_cka" in self.measures or "debiased_cka" in self.measures:
            # One pair of Gram matrices serves both estimators (see MinibatchCKA.update on centring).
            xc, yc = x - x.mean(0), y - y.mean(0)
            gram_x, gram_y = xc @ xc.T, yc @ yc.T
            if "linear_cka" in self.measures:
                self.linear.update_grams(gram_x, gram_y)
            if "debiased_cka" in self.measures:
                if x.shape[0] < 4:
                    log.warning("a minibatch of %d positions is too small for debiased CKA; skipped", x.shape[0])
                else:
                    self.debiased.update_grams(gram_x, gram_y)
        self.cos_sum += float(torch.nn.functional.cosine_similarity(x, y, dim=-1).double().sum())
        self.diff_norm_sum += float((y - x).norm(dim=-1).double().sum())
        self.base_norm_sum += float(x.norm(dim=-1).double().sum())
        self.n_tokens += int(x.shape[0])

    def result(self) -> dict[str, float | int]:
        values: dict[str, float | int] = {
            "n_tokens": self.n_tokens,
            "linear_cka": self.linear.value(),
            "debiased_cka": self.debiased.value(),
            "cosine": self.cos_sum / max(self.n_tokens, 1),
            "rel_change": self.diff_norm_sum / self.base_norm_sum if self.base_norm_sum > 0 else float("nan"),
        }
        return {k: v for k, v in values.items() if k == "n_tokens" or k in self.measures}
