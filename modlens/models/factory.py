"""Tiny models of the supported families, built from configs in memory (tests, toys, the embedded family)."""

from typing import Any, Literal

import torch
from transformers import (
    GPT2Config,
    GPT2LMHeadModel,
    GPTNeoXConfig,
    GPTNeoXForCausalLM,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from modlens.models.model import Model

Family = Literal["gpt_neox", "gpt2", "llama"]
FAMILIES: tuple[Family, ...] = ("gpt_neox", "gpt2", "llama")


def tiny_hf_model(
    family: Family,
    *,
    d_vocab: int,
    n_layers: int = 2,
    d_model: int = 64,
    n_heads: int = 4,
    n_kv_heads: int | None = None,
    d_mlp: int | None = None,
    n_ctx: int = 64,
    seed: int = 0,
) -> PreTrainedModel:
    """A randomly initialised HF causal LM, deterministic in ``seed``, dropout off, eager attention.

    Args:
        family: ``"gpt_neox"`` (Pythia architecture), ``"gpt2"`` or ``"llama"``.
        n_kv_heads: key/value heads for Llama (grouped-query attention when < ``n_heads``).
    """
    d_mlp = d_mlp or 4 * d_model
    common: dict[str, Any] = {"vocab_size": d_vocab, "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0}
    if family == "gpt_neox":
        cls: type[PreTrainedModel] = GPTNeoXForCausalLM
        config: Any = GPTNeoXConfig(
            hidden_size=d_model,
            num_hidden_layers=n_layers,
            num_attention_heads=n_heads,
            intermediate_size=d_mlp,
            max_position_embeddings=n_ctx,
            use_parallel_residual=True,
            tie_word_embeddings=False,
            hidden_dropout=0.0,
            attention_dropout=0.0,
            **common,
        )
    elif family == "gpt2":
        cls = GPT2LMHeadModel
        config = GPT2Config(
            n_embd=d_model,
            n_layer=n_layers,
            n_head=n_heads,
            n_inner=d_mlp,
            n_positions=n_ctx,
            resid_pdrop=0.0,
            embd_pdrop=0.0,
            attn_pdrop=0.0,
            **common,
        )
    elif family == "llama":
        cls = LlamaForCausalLM
        config = LlamaConfig(
            hidden_size=d_model,
            num_hidden_layers=n_layers,
            num_attention_heads=n_heads,
            num_key_value_heads=n_kv_heads or n_heads,
            intermediate_size=d_mlp,
            max_position_embeddings=n_ctx,
            tie_word_embeddings=False,
            **common,
        )
    else:
        raise ValueError(f"unknown family {family!r}; choose one of {', '.join(FAMILIES)}")
    config.architectures = [cls.__name__]
    config._attn_implementation = "eager"
    with torch.random.fork_rng():  # HF initialisation draws from the global RNG; keep it untouched
        torch.manual_seed(seed)
        model = cls(config)
    return model.eval()


def tiny_model(
    family: Family,
    *,
    tokenizer: PreTrainedTokenizerBase | None = None,
    d_vocab: int | None = None,
    **kwargs: int,
) -> Model:
    """``tiny_hf_model`` wrapped as a ``Model`` (vocabulary size taken from the tokenizer when given)."""
    if d_vocab is None:
        if tokenizer is None:
            raise ValueError("pass a tokenizer or d_vocab")
        d_vocab = len(tokenizer)
    from modlens.models.loading import load_model

    model = load_model(tiny_hf_model(family, d_vocab=d_vocab, **kwargs))
    return Model(hf=model.hf, tokenizer=tokenizer)
