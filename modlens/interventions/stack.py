"""The Hugging Face decoder run layer by layer: record a clean pass, then resume from an edited residual.

This is the fast path of the sweeps. ``DecoderStack`` is a model's layers (constructing one on an architecture
without a fast path raises); ``CleanRun`` is a recorded clean pass together with the layers verified to run
written out, so resuming from it cannot skip the check. The recorded points are the bridge's
(``modlens.interventions.capture``).
"""

import logging
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import nn

from modlens._typing import Float, Int, Tensor
from modlens.components import Component, Point
from modlens.interventions.bridge import component_values
from modlens.interventions.capture import decoder_layers, recording
from modlens.interventions.query_attention import QueryAttention, query_attention
from modlens.interventions.replacements import InterventionError
from modlens.models import Model
from modlens.models.modules import MODULE_PATHS

log = logging.getLogger(__name__)


def _input_major(proj: nn.Module) -> Tensor:
    """A projection's weight as ``[in, out]`` (``nn.Linear`` stores ``[out, in]``; GPT-2's ``Conv1D`` ``[in, out]``)."""
    weight = proj.weight
    assert isinstance(weight, torch.Tensor)
    return weight.T if isinstance(proj, nn.Linear) else weight


@dataclass
class LayerRecord:
    """One layer's clean activations and the arguments it was called with."""

    resid_pre: Tensor
    z: Tensor
    attn_out: Tensor
    post: Tensor
    mlp_out: Tensor
    resid_post: Tensor
    call_args: tuple[Any, ...] = ()
    call_kwargs: dict[str, Any] = field(default_factory=dict)
    attn_args: tuple[Any, ...] = ()
    attn_kwargs: dict[str, Any] = field(default_factory=dict)

    def at(self, component: Component) -> Tensor:
        """``component``'s clean activation, ``[batch, pos, ...]`` (a head's or neuron's slice of its point)."""
        return component_values(getattr(self, component.point), component)

    def take(self, *, rows: Tensor | slice | None = None, positions: Tensor | None = None) -> "LayerRecord":
        """The residual, attention and MLP outputs at some batch rows and/or positions (``z``, ``post`` stay whole)."""
        names = ("resid_pre", "attn_out", "mlp_out", "resid_post")
        picked = {name: getattr(self, name) for name in names}
        if rows is not None:
            picked = {name: value[rows] for name, value in picked.items()}
        if positions is not None:
            picked = {name: value[:, positions] for name, value in picked.items()}
        return replace(self, **picked)


RECORDED: tuple[Point, ...] = ("z", "attn_out", "post", "mlp_out", "resid_post")
"""The points ``record`` reads besides each layer's input (which comes with the layer's call arguments)."""


class DecoderStack:
    """Layer-by-layer access to a GPT-NeoX, GPT-2 or Llama HF causal LM.

    Raises:
        InterventionError: the model's architecture has no fast path (``modlens.models.modules.MODULE_PATHS``).
    """

    def __init__(self, model: Model) -> None:
        arch = model.spec.architecture
        if arch not in MODULE_PATHS:
            raise InterventionError(f"the fast path supports {', '.join(MODULE_PATHS)}; got {arch}")
        self.model = model
        self.hf = model.hf
        paths = MODULE_PATHS[arch]
        self.layers = decoder_layers(model)
        self.final_norm = self.hf.get_submodule(paths["final_norm"])
        self.unembed = self.hf.get_output_embeddings()
        self.paths = paths
        self.parallel = bool(getattr(self.hf.config, "use_parallel_residual", False))
        self.n_heads = model.spec.n_heads
        self.n_kv_heads = model.spec.n_kv_heads
        self.d_head = model.spec.d_head
        self._attention: dict[int, QueryAttention] = {}

    def part(self, layer: int, name: str) -> nn.Module:
        return self.layers[layer].get_submodule(self.paths[name])

    def w_o(self, layer: int) -> Float[Tensor, "head d_head d_model"]:
        """Output projection of each head, ``[head, d_head, d_model]``."""
        w = _input_major(self.part(layer, "o_proj"))
        return w.reshape(self.n_heads, self.d_head, -1)

    def w_out(self, layer: int) -> Float[Tensor, "d_mlp d_model"]:
        """MLP down projection, ``[d_mlp, d_model]``."""
        return _input_major(self.part(layer, "down"))

    @torch.no_grad()
    def record(self, tokens: Int[Tensor, "batch pos"], *, block: int | None = None) -> list[LayerRecord]:
        """One clean forward pass, recording every layer's activations and call arguments.

        ``block``: run at most this many rows at a time (the records are joined; see ``sweep._block_rows``).
        """
        if block is None or len(tokens) <= block:
            return self._record(tokens)
        parts = [self._record(rows) for rows in tokens.tensor_split(-(-len(tokens) // block))]
        joined = []
        for i in range(len(self.layers)):
            joined.append(_joined(tuple(p[i] for p in parts)))
            for p in parts:  # drop each block's copy once joined: peak memory stays one layer above the records
                p[i] = joined[-1]
        return joined

    def _record(self, tokens: Int[Tensor, "batch pos"]) -> list[LayerRecord]:
        found: list[dict[str, Any]] = [{} for _ in self.layers]
        points = [(i, point) for i in range(len(self.layers)) for point in RECORDED]

        def keep(index: int, value: Tensor) -> None:
            layer, point = points[index]
            found[layer][point] = value

        def keep_call(store: dict[str, Any], prefix: str) -> Any:
            def hook(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
                store[f"{prefix}_args"], store[f"{prefix}_kwargs"] = args, kwargs

            return hook

        handles = []
        try:
            for i, layer in enumerate(self.layers):
                handles.append(layer.register_forward_pre_hook(keep_call(found[i], "call"), with_kwargs=True))
                attn = self.part(i, "attn")
                handles.append(attn.register_forward_pre_hook(keep_call(found[i], "attn"), with_kwargs=True))
            with recording(self.model, points, keep):
                # the base model stops before the unembedding, which the caller applies where it needs logits
                self.hf.base_model(tokens.to(self.model.device), use_cache=False)
        finally:
            for h in handles:
                h.remove()
        records = []
        for store in found:
            args = store["call_args"]
            batch, pos = tokens.shape
            # the hidden states are the first argument, or (Llama) the keyword ``hidden_states``
            attn_args, attn_kwargs = store["attn_args"], dict(store["attn_kwargs"])
            if attn_args:
                attn_args = attn_args[1:]
            else:
                attn_kwargs.pop("hidden_states")
            records.append(
                LayerRecord(
                    resid_pre=args[0],
                    z=store["z"].reshape(batch, pos, self.n_heads, self.d_head),
                    attn_out=store["attn_out"],
                    post=store["post"],
                    mlp_out=store["mlp_out"],
                    resid_post=store["resid_post"],
                    call_args=tuple(_shared(a, batch) for a in args[1:]),
                    call_kwargs={k: _shared(v, batch) for k, v in store["call_kwargs"].items()},
                    attn_args=tuple(_shared(a, batch) for a in attn_args),
                    attn_kwargs={k: _shared(v, batch) for k, v in attn_kwargs.items()},
                )
            )
        return records

    def finish_layer(
        self, layer: int, resid_pre: Tensor, attn_out: Tensor | None, mlp_out: Tensor | None, record: LayerRecord
    ) -> Tensor:
        """The layer's output when its attention and/or MLP output is replaced (``None`` keeps it clean).

        Sequential blocks rerun their MLP on an edited attention output; parallel (GPT-NeoX) blocks
        read attention and MLP from the same input, so nothing reruns.
        """
        if attn_out is None and mlp_out is None:
            return record.resid_post
        if self.parallel:
            attn = record.attn_out if attn_out is None else attn_out
            mlp = record.mlp_out if mlp_out is None else mlp_out
            return mlp + attn + resid_pre
        if attn_out is None:
            assert mlp_out is not None
            mid = resid_pre + record.attn_out
            return mid + mlp_out
        if mlp_out is None:
            return self.block_output(layer, resid_pre, attn_out)
        return resid_pre + attn_out + mlp_out

    def resume(
        self,
        start: int,
        hidden: Tensor,
        records: list[LayerRecord],
        *,
        stop: int | None = None,
        first: int = 0,
        rows: Tensor | slice = slice(None),
        written_out: frozenset[int] = frozenset(),
    ) -> Tensor:
        """Runs layers ``start..stop-1`` (default: to the end) on a (stacked) residual entering layer ``start``.

        With ``first > 0``, ``hidden`` holds positions ``first..`` only: the earlier positions are the clean
        record's at batch rows ``rows`` (no edit reached them, and causal attention keeps it so), and each
        layer computes the later positions alone, reading keys and values of the whole sequence. Layers in
        ``written_out`` run through ``layer_at`` instead of the module; ``CleanRun`` passes those it verified.
        """
        for i in range(start, len(self.layers) if stop is None else stop):
            full = self.with_prefix(i, hidden, records, first, rows)
            if i in written_out:
                suffix = None if first == 0 else torch.arange(first, full.shape[1], device=full.device)
                hidden = self.layer_at(i, full, suffix, records)
                continue
            rec = records[i]
            out = _first(self.layers[i](full, *rec.call_args, **rec.call_kwargs))
            hidden = out[:, first:]
        return hidden

    @staticmethod
    def with_prefix(layer: int, hidden: Tensor, records: list[LayerRecord], first: int, rows: Tensor | slice) -> Tensor:
        """The residual entering ``layer``: the clean record's positions ``:first`` (at ``rows``), then ``hidden``."""
        if first == 0:
            return hidden
        return torch.cat([records[layer].resid_pre[rows, :first], hidden], dim=1)

    def layer_at(
        self,
        layer: int,
        hidden: Float[Tensor, "batch pos d_model"],
        positions: Int[Tensor, " n"] | None,
        records: list[LayerRecord],
    ) -> Float[Tensor, "batch n d_model"]:
        """A layer's output at ``positions`` (``None``: all), written out from its weights (``QueryAttention``).

        Keys and values read every position, the rest only the selected ones. Equals the module's output to
        float rounding (``CleanRun`` verifies it on the clean batch before using it); in narrow models with
        few rotary dimensions it is faster (see ``modlens.interventions.query_attention``).
        """
        if layer not in self._attention:
            self._attention[layer] = query_attention(
                self.part(layer, "attn"), self.model.spec.architecture, self.n_heads, self.n_kv_heads, self.d_head
            )
        attn = self._attention[layer](self.part(layer, "ln1")(hidden), positions, records[layer].attn_kwargs)
        return self.block_output(layer, hidden if positions is None else hidden[:, positions], attn)

    def last_layer_at(
        self, hidden: Float[Tensor, "batch pos d_model"], positions: Int[Tensor, " n"], records: list[LayerRecord]
    ) -> Float[Tensor, "batch n d_model"]:
        """The last layer's output at ``positions`` only; equals ``resume(last, hidden, records)[:, positions]``."""
        return self.layer_at(len(self.layers) - 1, hidden, positions, records)

    def reproduces(self, records: list[LayerRecord], layer: int, positions: Int[Tensor, " n"] | None) -> bool:
        """Whether ``layer_at`` gives the recorded output of ``layer`` (at ``positions``; ``None``: all) on a few
        clean rows, to float rounding."""
        rec = records[layer]
        rows = slice(0, 8)  # a few rows test the arithmetic as well as all of them
        try:
            fast = self.layer_at(layer, rec.resid_pre[rows], positions, records)
        except (RuntimeError, ValueError, AttributeError, TypeError) as err:
            log.info("layer %d: written-out layer unavailable (%s); the module runs", layer, err)
            return False
        slow = rec.resid_post[rows] if positions is None else rec.resid_post[rows, positions]
        scale = float(slow.abs().max()) + 1.0
        # a few roundings of the largest value: tight enough in float16/bfloat16 that a wrong path (e.g. queries
        # at neighbouring positions, about 0.1 of the scale) fails; failing only costs the slower exact path
        tolerance = max(1e-4, 4 * torch.finfo(slow.dtype).eps) * scale
        error = float((fast - slow).abs().max())
        if error > tolerance:
            log.info("layer %d: written-out layer differs from the module by %.3g; not used", layer, error)
        return error <= tolerance

    def block_output(self, layer: int, resid_pre: Tensor, attn_out: Tensor) -> Tensor:
        """A layer's output from its input and attention output (the MLP runs on these positions)."""
        mlp, ln2 = self.part(layer, "mlp"), self.part(layer, "ln2")
        if self.parallel:
            return _first(mlp(ln2(resid_pre))) + attn_out + resid_pre
        mid = resid_pre + attn_out
        return mid + _first(mlp(ln2(mid)))

    def logits(self, hidden: Tensor) -> Tensor:
        """Final norm and unembedding of a residual (any leading shape)."""
        return self.unembed(self.final_norm(hidden))


class CleanRun:
    """A clean pass recorded on a ``DecoderStack``, and the written-out layers verified to reproduce it.

    Constructing one runs the checks (``DecoderStack.reproduces`` on a few clean rows), so every resume from it
    uses only layers that agree with the modules: ``layer_at`` for the layers from ``resume_from`` up, and the
    last layer's queries at ``query_positions`` alone (``last_layer_at``) when given and verified.

    Attributes:
        stack: the model's layers.
        records: the clean pass, one record per layer (``DecoderStack.record``).
        written_out: the layers ``resume`` runs through ``layer_at``.
        query_path: whether the last layer may run at ``query_positions`` alone.
    """

    def __init__(
        self,
        stack: DecoderStack,
        records: list[LayerRecord],
        *,
        resume_from: int | None = None,
        query_positions: Int[Tensor, " n"] | None = None,
    ) -> None:
        last = len(stack.layers) - 1
        self.stack, self.records = stack, records
        # queries at the scored positions only, when the metric reads no others and the shortcut reproduces the
        # clean last layer
        self.query_path = query_positions is not None and stack.reproduces(records, last, query_positions)
        # layers resumed on every position: from the lowest edited one (the last only without the query path)
        candidates = range(resume_from, last if self.query_path else last + 1) if resume_from is not None else ()
        self.written_out = frozenset(i for i in candidates if stack.reproduces(records, i, None))

    def resume(
        self, start: int, hidden: Tensor, *, stop: int | None = None, first: int = 0, rows: Tensor | slice = slice(None)
    ) -> Tensor:
        """``DecoderStack.resume`` from this clean pass, through the verified written-out layers."""
        return self.stack.resume(
            start, hidden, self.records, stop=stop, first=first, rows=rows, written_out=self.written_out
        )


def _joined(parts: tuple[LayerRecord, ...]) -> LayerRecord:
    """Records of consecutive row blocks as one (call arguments are the same for every block)."""
    names = ("resid_pre", "z", "attn_out", "post", "mlp_out", "resid_post")
    joined: dict[str, Any] = {name: torch.cat([getattr(p, name) for p in parts]) for name in names}
    return replace(parts[0], **joined)


def _first(value: Any) -> Any:
    return value[0] if isinstance(value, tuple) else value


def _shared(value: Any, batch: int) -> Any:
    """A layer argument made batch-independent: per-row copies of one tensor (the causal mask) become one row."""
    if isinstance(value, torch.Tensor) and value.ndim >= 1 and value.shape[0] == batch and batch > 1:
        if (value.dtype == torch.bool or value.is_floating_point()) and bool((value == value[:1]).all()):
            return value[:1]
        raise InterventionError("a decoder layer received per-row arguments; the fast path cannot stack ablations")
    if type(value).__name__.endswith("Cache"):
        return None
    return value
