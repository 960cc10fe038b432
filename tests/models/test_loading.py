import pytest
import torch

from modlens.errors import ModelLoadError
from modlens.models import Model, load_model, read_provenance, save_model, tiny_hf_model


def test_bridge_matches_hf_logits(family_model: Model, tokenizer) -> None:
    tokens = torch.randint(0, len(tokenizer), (3, 12), generator=torch.Generator().manual_seed(0))
    hf_logits = family_model.logits(tokens)
    bridge_logits = family_model.bridge(tokens)
    torch.testing.assert_close(bridge_logits, hf_logits, atol=1e-4, rtol=0)


def test_save_load_round_trip_gives_equal_logits(family_model: Model, tmp_path) -> None:
    tokens = torch.randint(0, family_model.spec.d_vocab, (2, 10), generator=torch.Generator().manual_seed(1))
    path = save_model(family_model, tmp_path / "m", seed=7)
    loaded = load_model(path)
    torch.testing.assert_close(loaded.logits(tokens), family_model.logits(tokens), atol=0, rtol=0)
    assert loaded.spec == family_model.spec
    assert loaded.tokenizer is not None and len(loaded.tokenizer) == len(family_model.tokenizer)
    meta = read_provenance(path)
    assert meta["seed"] == 7 and meta["spec"]["n_layers"] == family_model.spec.n_layers
    assert "torch" in meta["packages"]
    assert list((path).glob("*.safetensors")), "weights must be written as safetensors"


def test_save_refuses_existing_directory_and_leaves_no_staging(family_model: Model, tmp_path) -> None:
    target = tmp_path / "m"
    save_model(family_model, target)
    with pytest.raises(Exception, match="already exists"):
        save_model(family_model, target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_spec_reports_grouped_query_attention(tokenizer) -> None:
    from modlens.models import tiny_model

    model = tiny_model(
        "llama", tokenizer=tokenizer, n_layers=3, d_model=48, n_heads=6, n_kv_heads=2, d_mlp=96, n_ctx=20
    )
    spec = model.spec
    assert (spec.n_layers, spec.n_heads, spec.n_kv_heads, spec.d_model, spec.d_head, spec.d_mlp, spec.n_ctx) == (
        3,
        6,
        2,
        48,
        8,
        96,
        20,
    )
    assert spec.architecture == "LlamaForCausalLM" and spec.d_vocab == len(tokenizer)
    assert model.bridge.cfg.n_key_value_heads == 2


def test_load_from_hf_module_and_bridge(tokenizer) -> None:
    hf = tiny_hf_model("gpt_neox", d_vocab=len(tokenizer), n_layers=2, d_model=32, n_heads=4, n_ctx=16)
    tokens = torch.randint(0, len(tokenizer), (2, 8), generator=torch.Generator().manual_seed(2))
    from_hf = load_model(hf)
    assert from_hf.tokenizer is None
    expected = from_hf.logits(tokens)
    # A tokenizer-less model still gets a bridge (with a stand-in id tokenizer).
    torch.testing.assert_close(from_hf.bridge(tokens), expected, atol=1e-4, rtol=0)
    from_bridge = load_model(from_hf.bridge)
    torch.testing.assert_close(from_bridge.logits(tokens), expected, atol=1e-5, rtol=0)
    assert load_model(from_hf) is from_hf


def test_two_tokenizerless_models_each_get_a_bridge(tokenizer) -> None:
    a, b = (load_model(tiny_hf_model("gpt2", d_vocab=30, n_layers=1, d_model=32, n_heads=4, seed=s)) for s in (0, 1))
    tokens = torch.randint(0, 30, (2, 6), generator=torch.Generator().manual_seed(4))
    for model in (a, b):
        torch.testing.assert_close(model.bridge(tokens), model.logits(tokens), atol=1e-4, rtol=0)


def test_neox_bridge_weights_are_written_back_when_unwrapping(tokenizer) -> None:
    """The NeoX bridge trains copies of q/k/v; unwrapping must carry edits to them into query_key_value."""
    model = load_model(tiny_hf_model("gpt_neox", d_vocab=len(tokenizer), n_layers=1, d_model=32, n_heads=4, n_ctx=16))
    bridge = model.bridge
    with torch.no_grad():
        bridge.blocks[0].attn.q.weight.mul_(2.0)
    tokens = torch.randint(0, len(tokenizer), (2, 8), generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(load_model(bridge).logits(tokens), bridge(tokens), atol=1e-5, rtol=0)


def test_dtype_and_device_are_applied(family_model: Model) -> None:
    converted = load_model(family_model, dtype=torch.float64)
    assert converted.dtype == torch.float64 and converted.device.type == "cpu"
    assert family_model.dtype == torch.float32


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("./no/such/dir", "does not exist"),
        ("/definitely/missing/model", "does not exist"),
    ],
)
def test_missing_paths_give_clear_errors(source: str, message: str) -> None:
    with pytest.raises(ModelLoadError, match=message):
        load_model(source)


def test_directory_without_model_is_refused(tmp_path) -> None:
    (tmp_path / "notes.txt").write_text("not a model")
    with pytest.raises(ModelLoadError, match="holds no model"):
        load_model(tmp_path)
    with pytest.raises(ModelLoadError, match="is a file"):
        load_model(tmp_path / "notes.txt")


def test_non_model_object_is_refused() -> None:
    with pytest.raises(ModelLoadError, match="cannot load a model from a int"):
        load_model(3)
