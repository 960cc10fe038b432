"""Architecture summary of a causal LM, read from its Hugging Face config, and pair compatibility checks."""

import dataclasses
from dataclasses import dataclass
from typing import Any

from modlens.errors import ModelLoadError, PairMismatchError

SUPPORTED_ARCHITECTURES = ("GPTNeoXForCausalLM", "GPT2LMHeadModel", "LlamaForCausalLM")


@dataclass(frozen=True, kw_only=True)
class ModelSpec:
    """The shape of a transformer, in TransformerLens vocabulary.

    Attributes:
        architecture: the HF class name, e.g. ``"GPTNeoXForCausalLM"``.
        n_layers: number of transformer blocks.
        n_heads: attention (query) heads per layer.
        n_kv_heads: key/value heads per layer (fewer than ``n_heads`` under grouped-query attention).
        d_model: residual stream width.
        d_head: width of one head.
        d_mlp: MLP hidden width.
        d_vocab: vocabulary size.
        n_ctx: maximum context length.
    """

    architecture: str
    n_layers: int
    n_heads: int
    n_kv_heads: int
    d_model: int
    d_head: int
    d_mlp: int
    d_vocab: int
    n_ctx: int

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _first(config: Any, *names: str) -> Any:
    for name in names:
        value = getattr(config, name, None)
        if value is not None:
            return value
    return None


def spec_from_hf_config(config: Any) -> ModelSpec:
    """Reads a ``ModelSpec`` from a ``transformers`` config (GPT-2, GPT-NeoX, Llama and look-alikes).

    Raises:
        ModelLoadError: the config is not a decoder-only causal LM modlens understands.
    """
    architectures = getattr(config, "architectures", None) or []
    arch = architectures[0] if architectures else _class_name_for_model_type(config)
    d_model = _first(config, "hidden_size", "n_embd", "d_model")
    n_layers = _first(config, "num_hidden_layers", "n_layer")
    n_heads = _first(config, "num_attention_heads", "n_head")
    n_ctx = _first(config, "max_position_embeddings", "n_positions", "n_ctx")
    vocab = _first(config, "vocab_size")
    if None in (d_model, n_layers, n_heads, n_ctx, vocab):
        raise ModelLoadError(
            f"config of model type {getattr(config, 'model_type', '?')!r} lacks the fields of a "
            f"decoder-only transformer (hidden size, layers, heads, context, vocab); "
            f"supported: {', '.join(SUPPORTED_ARCHITECTURES)}"
        )
    d_mlp = _first(config, "intermediate_size", "n_inner") or 4 * d_model
    d_head = _first(config, "head_dim") or d_model // n_heads
    n_kv = _first(config, "num_key_value_heads") or n_heads
    return ModelSpec(
        architecture=arch,
        n_layers=int(n_layers),
        n_heads=int(n_heads),
        n_kv_heads=int(n_kv),
        d_model=int(d_model),
        d_head=int(d_head),
        d_mlp=int(d_mlp),
        d_vocab=int(vocab),
        n_ctx=int(n_ctx),
    )


def _class_name_for_model_type(config: Any) -> str:
    by_type = {"gpt_neox": "GPTNeoXForCausalLM", "gpt2": "GPT2LMHeadModel", "llama": "LlamaForCausalLM"}
    return by_type.get(getattr(config, "model_type", ""), type(config).__name__.replace("Config", "ForCausalLM"))


def pair_mismatches(base: ModelSpec, tuned: ModelSpec) -> list[str]:
    """Every field in which two specs differ, as ``"field: base X vs tuned Y"`` strings."""
    return [
        f"{f.name}: base {getattr(base, f.name)} vs tuned {getattr(tuned, f.name)}"
        for f in dataclasses.fields(ModelSpec)
        if getattr(base, f.name) != getattr(tuned, f.name)
    ]


def check_spec_pair(base: ModelSpec, tuned: ModelSpec) -> None:
    """Raises one ``PairMismatchError`` naming every mismatch, or returns when the specs match."""
    problems = pair_mismatches(base, tuned)
    if problems:
        raise PairMismatchError("models cannot be compared weight by weight; mismatched " + "; ".join(problems))
