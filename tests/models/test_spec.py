import pytest

from modlens.errors import PairMismatchError
from modlens.models import check_pair, tiny_model


def test_identical_shapes_pass(tokenizer) -> None:
    a = tiny_model("gpt2", tokenizer=tokenizer, n_layers=2, d_model=32, n_heads=4, n_ctx=16, seed=0)
    b = tiny_model("gpt2", tokenizer=tokenizer, n_layers=2, d_model=32, n_heads=4, n_ctx=16, seed=1)
    check_pair(a, b)


def test_every_mismatch_is_named_in_one_error(tokenizer) -> None:
    base = tiny_model("llama", tokenizer=tokenizer, n_layers=2, d_model=32, n_heads=4, n_kv_heads=2, n_ctx=16)
    other = tiny_model("gpt_neox", d_vocab=40, n_layers=3, d_model=48, n_heads=6, d_mlp=64, n_ctx=16)
    with pytest.raises(PairMismatchError) as info:
        check_pair(base, other)
    message = str(info.value)
    for field in ("architecture", "n_layers", "n_heads", "n_kv_heads", "d_model", "d_mlp", "d_vocab"):
        assert f"{field}:" in message, field
    assert "n_ctx" not in message and "d_head: base 8 vs tuned 8" not in message
    assert "\n" not in message
