"""Architectures beyond the three families: Llama look-alikes on the fast path, others through bridge hooks,
and an architecture the bridge cannot load refused at ``load_model``."""

import logging

import pytest
import torch
from frames import assert_frames_close  # type: ignore[import-not-found]
from transformers import AutoConfig, AutoModelForCausalLM

from modlens.ablation import ablate, run_ablation_loop, run_ablation_sweep
from modlens.components import Component, enumerate_components
from modlens.drift import run_activation_drift, run_weight_drift
from modlens.errors import ModelLoadError
from modlens.masks import Mask, fit_mask, masked_logits
from modlens.models import Model, load_model
from modlens.models.modules import has_fast_path
from modlens.patching import encode_pairs, run_patching_loop, run_patching_sweep
from modlens.tasks import SyntheticTask
from modlens.tasks.prompts import PromptExample

SHAPE = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 64}
EXTRA = {
    "qwen2": {"num_key_value_heads": 2},
    "mistral": {"num_key_value_heads": 2},
    "gemma": {"num_key_value_heads": 2, "head_dim": 8},
    "phi": {},
    "opt": {"ffn_dim": 64, "word_embed_proj_dim": 32},
}
FAST = ("qwen2", "mistral")


def tiny(model_type: str, tokenizer, seed: int = 0, **extra) -> Model:
    config = AutoConfig.for_model(
        model_type,
        vocab_size=len(tokenizer),
        max_position_embeddings=64,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        **SHAPE,
        **EXTRA.get(model_type, {}),
        **extra,
    )
    torch.manual_seed(seed)
    hf = AutoModelForCausalLM.from_config(config, attn_implementation="eager")
    if model_type == "qwen2":  # random biases, so the fast path's bias handling is exercised
        for layer in hf.model.layers:
            for proj in (layer.self_attn.q_proj, layer.self_attn.k_proj, layer.self_attn.v_proj):
                torch.nn.init.normal_(proj.bias, std=0.5)
    model = load_model(hf)
    return Model(hf=model.hf, tokenizer=tokenizer, source=model.source, revision=None)


@pytest.fixture(scope="module", params=list(EXTRA))
def arch_model(request, tokenizer) -> Model:
    return tiny(request.param, tokenizer)


@pytest.fixture(scope="module")
def batch(layout):
    return SyntheticTask.from_name("reverse", layout).sample(6, split="test", seed=0)


def components(model: Model) -> list[Component]:
    spec = model.spec
    return [
        *enumerate_components(spec, "head"),
        Component(0, "attn"),
        Component(1, "mlp"),
        Component(0, "neuron", 5),
        *enumerate_components(spec, "resid"),
    ]


def test_fast_path_only_for_llama_layout(arch_model: Model) -> None:
    type_name = arch_model.hf.config.model_type
    assert has_fast_path(arch_model.spec.architecture) == (type_name in FAST)


def test_ablation_sweep_equals_the_loop(arch_model: Model, batch, caplog) -> None:
    comps = components(arch_model)
    with caplog.at_level(logging.WARNING):
        fast = run_ablation_sweep(arch_model, batch, comps, replacement="mean", progress=False)
    notices = [r.getMessage() for r in caplog.records if "no fast path" in r.getMessage()]
    assert len(notices) == (0 if has_fast_path(arch_model.spec.architecture) else 1)
    slow = run_ablation_loop(arch_model, batch, comps, replacement="mean")
    assert_frames_close(fast, slow)
    assert fast["change"].abs().max() > 1e-4


def test_patching_runs_and_has_its_ends(arch_model: Model, tokenizer) -> None:
    pairs = encode_pairs(
        [
            PromptExample("<bos> reverse id 1 2 3 4 =", " 4", "<bos> reverse id 5 6 7 8 =", " 8"),
            PromptExample("<bos> sort id 9 2 6 5 =", " 2", "<bos> sort id 3 5 8 9 =", " 3"),
        ],
        tokenizer,
        n_ctx=64,
    )
    comps = components(arch_model)
    fast = run_patching_sweep(arch_model, pairs, comps, positions="each", progress=False)
    slow = run_patching_loop(arch_model, pairs, comps, positions="each")
    # the normalised metric divides by clean minus corrupted, small on a random model
    assert_frames_close(fast, slow, value="patched", base="unpatched", key="site", unit=1e3)
    whole = run_patching_sweep(arch_model, pairs, [Component(0, "resid")], progress=False)
    assert whole["unpatched"].iloc[0] == pytest.approx(1.0, abs=1e-4)
    assert whole["patched"].iloc[0] == pytest.approx(0.0, abs=1e-3)


def test_drift_sees_the_one_changed_layer(arch_model: Model, tokenizer, batch) -> None:
    tuned_hf = AutoModelForCausalLM.from_config(arch_model.hf.config, attn_implementation="eager")
    tuned_hf.load_state_dict(arch_model.hf.state_dict())
    with torch.no_grad():
        for name, param in tuned_hf.named_parameters():
            if ".1." in name and param.ndim == 2:  # every matrix of layer 1
                param.add_(0.05 * torch.randn_like(param))
    tuned = arch_model.with_weights(tuned_hf)
    weights = run_weight_drift(arch_model, tuned)
    per_layer = weights[weights["head"].isna() & weights["layer"].notna()].groupby("layer")["rel_change"].max()
    assert per_layer.loc[0] == 0 and per_layer.loc[1] > 0.01
    acts = run_activation_drift(arch_model, tuned, batch)
    layer0 = acts[(acts["layer"] == 0)]
    assert (layer0["linear_cka"] > 1 - 1e-5).all() and acts[acts["layer"] == 1]["linear_cka"].min() < 1 - 1e-5


def test_masks_fit_and_edit_what_ablation_edits(arch_model: Model, batch) -> None:
    spec = arch_model.spec
    mask = fit_mask(arch_model, batch, steps=5, seed=0)
    assert mask.n_units == spec.n_layers * (spec.n_heads + spec.d_mlp)
    tokens = batch.tokens
    full = masked_logits(arch_model, Mask.full(spec), batch)
    torch.testing.assert_close(full, arch_model.logits(tokens), rtol=1e-5, atol=1e-5)
    comps = [Component(0, "head", 1), Component(1, "neuron", 7)]
    without = masked_logits(arch_model, Mask.from_components(comps, spec), batch, keep="outside", replacement="zero")
    with ablate(arch_model, comps, replacement="zero") as bridge:
        torch.testing.assert_close(without, bridge(tokens), rtol=1e-5, atol=1e-5)
    assert (without - full).abs().max() > 1e-5


def test_an_architecture_the_bridge_cannot_load_is_refused(tokenizer) -> None:
    config = AutoConfig.for_model("ctrl", vocab_size=len(tokenizer), n_embd=32, n_layer=2, n_head=4, dff=64)
    with pytest.raises(ModelLoadError, match="CTRLForCausalLM cannot be loaded by the TransformerLens bridge"):
        load_model(AutoModelForCausalLM.from_config(config))
