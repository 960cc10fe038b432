"""The Hugging Face decoder run layer by layer: record a clean pass, then resume from an edited residual.

This is the fast path of the sweep. Its semantics match the bridge's hooks: ``z`` is the input of the
attention output projection (``hook_z``), ``attn_out`` its output (``hook_attn_out``), ``post`` the input
of the MLP down projection (``mlp.hook_post``), ``mlp_out`` the MLP output (``hook_mlp_out``).
"""

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from modlens._typing import Float, Int, Tensor
from modlens.ablation.methods import AblationError
from modlens.models import Model

# Submodule paths per architecture: layers, final norm, and, inside a layer, the attention output
# projection, the second norm, the MLP and its down projection.
_PATHS: dict[str, dict[str, str]] = {
    "GPTNeoXForCausalLM": {
        "layers": "gpt_neox.layers",
        "final_norm": "gpt_neox.final_layer_norm",
        "ln1": "input_layernorm",
        "attn": "attention",
        "o_proj": "attention.dense",
        "ln2": "post_attention_layernorm",
        "mlp": "mlp",
        "down": "mlp.dense_4h_to_h",
    },
    "GPT2LMHeadModel": {
        "layers": "transformer.h",
        "final_norm": "transformer.ln_f",
        "ln1": "ln_1",
        "attn": "attn",
        "o_proj": "attn.c_proj",
        "ln2": "ln_2",
        "mlp": "mlp",
        "down": "mlp.c_proj",
    },
    "LlamaForCausalLM": {
        "layers": "model.layers",
        "final_norm": "model.norm",
        "ln1": "input_layernorm",
        "attn": "self_attn",
        "o_proj": "self_attn.o_proj",
        "ln2": "post_attention_layernorm",
        "mlp": "mlp",
        "down": "mlp.down_proj",
    },
}


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


class DecoderStack:
    """Layer-by-layer access to a GPT-NeoX, GPT-2 or Llama HF causal LM."""

    def __init__(self, model: Model) -> None:
        arch = model.spec.architecture
        if arch not in _PATHS:
            raise AblationError(f"the fast ablation path supports {', '.join(_PATHS)}; got {arch}")
        self.model = model
        self.hf = model.hf
        paths = _PATHS[arch]
        layers = self.hf.get_submodule(paths["layers"])
        assert isinstance(layers, nn.ModuleList)
        self.layers = list(layers)
        self.final_norm = self.hf.get_submodule(paths["final_norm"])
        self.unembed = self.hf.get_output_embeddings()
        self.paths = paths
        self.parallel = bool(getattr(self.hf.config, "use_parallel_residual", False))
        self.n_heads = model.spec.n_heads
        self.d_head = model.spec.d_head

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
    def record(self, tokens: Int[Tensor, "batch pos"]) -> list[LayerRecord]:
        """One clean forward pass, recording every layer's activations and call arguments."""
        found: list[dict[str, Any]] = [{} for _ in self.layers]
        handles = []

        def keep(store: dict[str, Any], key: str, *, from_input: bool) -> Any:
            def hook(module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
                value = args[0] if from_input else output
                store[key] = value[0] if isinstance(value, tuple) else value

            return hook

        def keep_call(store: dict[str, Any], prefix: str) -> Any:
            def hook(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
                store[f"{prefix}_args"], store[f"{prefix}_kwargs"] = args, kwargs

            return hook

        try:
            for i, layer in enumerate(self.layers):
                store = found[i]
                handles.append(layer.register_forward_pre_hook(keep_call(store, "call"), with_kwargs=True))
                attn = self.part(i, "attn")
                handles.append(attn.register_forward_pre_hook(keep_call(store, "attn"), with_kwargs=True))
                handles.append(layer.register_forward_hook(keep(store, "resid_post", from_input=False)))
                handles.append(self.part(i, "o_proj").register_forward_hook(keep(store, "z", from_input=True)))
                handles.append(self.part(i, "attn").register_forward_hook(keep(store, "attn_out", from_input=False)))
                handles.append(self.part(i, "down").register_forward_hook(keep(store, "post", from_input=True)))
                handles.append(self.part(i, "mlp").register_forward_hook(keep(store, "mlp_out", from_input=False)))
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
        mid = resid_pre + attn_out
        if mlp_out is None:
            mlp_out = self.part(layer, "mlp")(self.part(layer, "ln2")(mid))
            if isinstance(mlp_out, tuple):
                mlp_out = mlp_out[0]
        return mid + mlp_out

    def resume(self, start: int, hidden: Tensor, records: list[LayerRecord], *, stop: int | None = None) -> Tensor:
        """Runs layers ``start..stop-1`` (default: to the end) on a (stacked) residual entering layer ``start``."""
        for i in range(start, len(self.layers) if stop is None else stop):
            rec = records[i]
            out = self.layers[i](hidden, *rec.call_args, **rec.call_kwargs)
            hidden = out[0] if isinstance(out, tuple) else out
        return hidden

    def last_layer_at(self, hidden: Tensor, positions: Tensor, records: list[LayerRecord]) -> Tensor:
        """The last layer's output at ``positions`` only: attention reads every position, the MLP only these.

        Equals ``resume(last, hidden, records)[:, positions]``; the MLP, most of a layer's work, runs on
        the selected positions alone.
        """
        layer = len(self.layers) - 1
        rec = records[layer]
        attn = self.part(layer, "attn")(self.part(layer, "ln1")(hidden), *rec.attn_args, **rec.attn_kwargs)
        attn = (attn[0] if isinstance(attn, tuple) else attn)[:, positions]
        x = hidden[:, positions]
        mlp, ln2 = self.part(layer, "mlp"), self.part(layer, "ln2")
        if self.parallel:
            return mlp(ln2(x)) + attn + x
        mid = x + attn
        return mid + mlp(ln2(mid))

    def logits(self, hidden: Tensor) -> Tensor:
        """Final norm and unembedding of a residual (any leading shape)."""
        return self.unembed(self.final_norm(hidden))


def _shared(value: Any, batch: int) -> Any:
    """A layer argument made batch-independent: per-row copies of one tensor (the causal mask) become one row."""
    if isinstance(value, torch.Tensor) and value.ndim >= 1 and value.shape[0] == batch and batch > 1:
        if (value.dtype == torch.bool or value.is_floating_point()) and bool((value == value[:1]).all()):
            return value[:1]
        raise AblationError("a decoder layer received per-row arguments; the fast path cannot stack ablations")
    if type(value).__name__.endswith("Cache"):
        return None
    return value
