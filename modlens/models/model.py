"""The ``Model`` type: a Hugging Face causal LM plus a TransformerLens bridge exposing canonical hook names."""

import copy
import functools
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from modlens._typing import Float, Tensor, Tokens
from modlens.errors import NonFiniteError
from modlens.models.spec import ModelSpec, check_spec_pair, spec_from_hf_config

log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class Model:
    """A causal LM ready for analysis.

    ``hf`` is the plain Hugging Face module (training, saving, fast paths). ``bridge`` is a
    TransformerLens ``TransformerBridge`` with the canonical hook names (``blocks.{l}.attn.hook_z``,
    ``blocks.{l}.mlp.hook_post``, ...). The bridge wraps its *own copy* of the weights, built on first
    use, because wrapping rewrites a module tree in place (and, for GPT-NeoX, copies the fused QKV).
    Treat a ``Model`` as read-only: functions that change weights return a new ``Model``.

    Attributes:
        hf: the Hugging Face module, in eval mode.
        tokenizer: the tokenizer saved with the model, or ``None``.
        spec: architecture summary (layers, heads, widths, vocab, context).
        source: where the model came from (a directory, a hub id, or ``"<in-memory>"``).
        revision: the hub revision (e.g. ``"step1000"`` for a Pythia checkpoint), if any.
    """

    hf: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase | None = None
    source: str = "<in-memory>"
    revision: str | None = None

    @functools.cached_property
    def spec(self) -> ModelSpec:
        return spec_from_hf_config(self.hf.config)

    @property
    def device(self) -> torch.device:
        return next(self.hf.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.hf.parameters()).dtype

    @functools.cached_property
    def bridge(self) -> Any:
        """The ``TransformerBridge`` over a copy of ``hf``'s modules that shares its weights (booted on first access,
        in eval mode)."""
        from transformer_lens.model_bridge import TransformerBridge

        label = self.source if Path(self.source).is_dir() else f"modlens-{self.spec.architecture}"
        tokenizer = _disk_backed(self.tokenizer) if self.tokenizer is not None else _id_tokenizer(self.spec)
        bridge = TransformerBridge.boot_transformers(
            label,
            hf_model=_sharing_weights(self.hf),
            tokenizer=tokenizer,
            device=str(self.device),
            dtype=self.dtype,
        )
        bridge.eval()
        for p in bridge.parameters():
            p.requires_grad_(False)
        return bridge

    @torch.no_grad()
    def logits(self, tokens: Tokens) -> Float[Tensor, "batch pos d_vocab"]:
        """Logits of the plain HF module (no hooks) for a token batch."""
        return self.hf(tokens.to(self.device)).logits

    def with_weights(self, hf: PreTrainedModel, *, source: str | None = None) -> "Model":
        """A new ``Model`` sharing this one's tokenizer, around another module of the same shape."""
        new = Model(hf=hf.eval(), tokenizer=self.tokenizer, source=source or self.source, revision=None)
        check_spec_pair(self.spec, new.spec)
        return new


def check_pair(base: Model, tuned: Model) -> None:
    """Raises ``PairMismatchError`` naming every mismatch when two models cannot be compared weight by weight."""
    check_spec_pair(base.spec, tuned.spec)


def check_finite(values: Tensor, what: str) -> None:
    """Raises ``NonFiniteError`` when ``values`` (a model's outputs, named by ``what``) hold NaN or infinity."""
    if not torch.isfinite(values).all():
        raise NonFiniteError(
            f"{what} hold NaN or infinity; check the weights and the dtype (float16 overflows easily; try float32)"
        )


def _sharing_weights(hf: PreTrainedModel) -> PreTrainedModel:
    """A copy of ``hf``'s module tree holding the same parameter and buffer tensors.

    The bridge rewrites the module tree it is given (it wraps every submodule), so it needs a tree of its own;
    the weights need not be copied, which would hold a model twice in memory. (GPT-NeoX bridges still split
    the fused query/key/value weights into copies.)
    """
    shared = {id(t): t for t in (*hf.parameters(), *hf.buffers())}
    return copy.deepcopy(hf, memo=shared)


def _id_tokenizer(spec: ModelSpec) -> PreTrainedTokenizerBase:
    """A stand-in tokenizer for models that came without one: token ``<i>`` is id ``i``.

    The bridge insists on a tokenizer loaded from disk; this keeps tokenizer-less models usable with
    token tensors (string input then reads ``"<3> <17>"``). Built afresh for every bridge: booting a
    bridge reconfigures the tokenizer it is given.
    """
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {f"<{i}>": i for i in range(spec.d_vocab)}
    tk = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<0>"))
    tk.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, unk_token="<0>", pad_token="<0>")
    return _disk_backed(tok)


def _disk_backed(tokenizer: PreTrainedTokenizerBase) -> PreTrainedTokenizerBase:
    """The bridge reloads a tokenizer from ``name_or_path``; give it one that exists on disk."""
    # A tokenizer never saved has name_or_path "" (which Path reads as the current directory).
    if tokenizer.name_or_path and Path(str(tokenizer.name_or_path)).is_dir():
        return tokenizer
    directory = tempfile.mkdtemp(prefix="modlens-tok-")
    tokenizer.save_pretrained(directory)
    return AutoTokenizer.from_pretrained(directory)
