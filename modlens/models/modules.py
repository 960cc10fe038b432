"""Where the parts of each fast-path Hugging Face decoder live, for code that runs or hooks its layers directly.

Keyed by the model class (``ModelSpec.architecture``). Inside ``layers``, each block holds ``ln1``, ``attn``
(``o_proj`` its output projection), ``ln2`` and ``mlp`` (``down`` its down projection).
"""

LLAMA_LAYOUT = {
    "layers": "model.layers",
    "final_norm": "model.norm",
    "ln1": "input_layernorm",
    "attn": "self_attn",
    "o_proj": "self_attn.o_proj",
    "ln2": "post_attention_layernorm",
    "mlp": "mlp",
    "down": "mlp.down_proj",
}
"""Llama's module names, shared by Qwen2 and Mistral (whose attention adds biases or a sliding window)."""

MODULE_PATHS: dict[str, dict[str, str]] = {
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
    "LlamaForCausalLM": LLAMA_LAYOUT,
    "Qwen2ForCausalLM": LLAMA_LAYOUT,
    "MistralForCausalLM": LLAMA_LAYOUT,
}
"""The architectures with modlens's fast paths (exact sweeps, raw-module drift hooks); every other architecture
the TransformerLens bridge loads runs through bridge hooks."""


def has_fast_path(architecture: str) -> bool:
    return architecture in MODULE_PATHS
