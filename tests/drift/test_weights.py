"""Weight drift: zero for a model with itself, localized for a planted change, GQA counted per real head."""

import numpy as np
import pytest

from modlens.drift import run_weight_drift
from modlens.errors import PairMismatchError
from modlens.models import tiny_model


def test_model_with_itself_has_zero_drift(family_model):
    frame = run_weight_drift(family_model, family_model)
    np.testing.assert_allclose(frame["rel_change"], 0.0, atol=1e-12)
    np.testing.assert_allclose(frame["cosine"], 1.0, atol=1e-12)
    np.testing.assert_allclose(frame["sv_rel_change"], 0.0, atol=1e-12)
    np.testing.assert_allclose(frame[["angle_in", "angle_out"]].to_numpy(), 0.0, atol=1e-6)  # degrees
    assert frame["sv_share"].isna().all()  # no change to split


def test_rows_cover_every_matrix_and_head(family_model):
    frame = run_weight_drift(family_model, family_model)
    spec = family_model.spec
    whole = frame[frame["layer"].notna() & frame["head"].isna()]
    gated = {"W_gate"} if spec.architecture.startswith("Llama") else set()
    expected = {"W_Q", "W_K", "W_V", "W_O", "W_in", "W_out"} | gated
    assert set(whole["matrix"]) == expected
    assert (whole.groupby("matrix").size() == spec.n_layers).all()
    per_head = frame[frame["head"].notna()].groupby("matrix")["head"].nunique()
    assert per_head["W_Q"] == per_head["W_O"] == spec.n_heads
    # grouped-query attention: one row per key/value head, not per query head sharing it
    assert per_head["W_K"] == per_head["W_V"] == spec.n_kv_heads
    embeddings = frame[frame["layer"].isna()]
    assert {"W_E", "W_U"} <= set(embeddings["matrix"])
    assert ("W_pos" in set(embeddings["matrix"])) == spec.architecture.startswith("GPT2")
    whole_q = whole[whole["matrix"] == "W_K"]["n_params"].iloc[0]
    assert whole_q == spec.d_model * spec.n_kv_heads * spec.d_head


def test_planted_change_shows_in_its_layer_and_matrix_only(planted_pair):
    _, base, tuned = planted_pair
    frame = run_weight_drift(base, tuned)
    hit = (frame["layer"] == 1).fillna(False) & (frame["matrix"] == "W_out")
    assert hit.sum() == 1
    assert frame.loc[hit, "rel_change"].iloc[0] > 0.01
    assert frame.loc[hit, "cosine"].iloc[0] < 1.0
    assert 0.0 <= frame.loc[hit, "sv_share"].iloc[0] <= 1.0
    np.testing.assert_allclose(frame.loc[~hit, "rel_change"], 0.0, atol=1e-12)


def test_spectral_split_of_a_pure_rescaling(tokenizer):
    import copy

    import torch

    base = tiny_model("gpt2", tokenizer=tokenizer, n_layers=1, d_model=16, n_heads=2, n_ctx=16)
    hf = copy.deepcopy(base.hf)
    with torch.no_grad():
        hf.transformer.h[0].mlp.c_fc.weight.mul_(1.5)
    frame = run_weight_drift(base, base.with_weights(hf))
    row = frame[(frame["matrix"] == "W_in")].iloc[0]
    assert row["rel_change"] == pytest.approx(0.5, abs=1e-6)
    assert row["sv_rel_change"] == pytest.approx(0.5, abs=1e-6)
    assert row["sv_share"] == pytest.approx(1.0, abs=1e-6)  # all of the change is singular values
    assert row["angle_in"] == pytest.approx(0.0, abs=1e-3)


def test_refuses_incomparable_pair(tokenizer):
    a = tiny_model("gpt2", tokenizer=tokenizer, n_layers=2, d_model=32, n_heads=4, n_ctx=32)
    b = tiny_model("gpt2", tokenizer=tokenizer, n_layers=3, d_model=32, n_heads=4, n_ctx=32)
    with pytest.raises(PairMismatchError, match="n_layers"):
        run_weight_drift(a, b)


def test_tied_unembedding_reuses_the_embedding_rows(tokenizer):
    """GPT-2 ties ``W_U = W_Eᵀ``: its row is the ``W_E`` row with input and output sides swapped, and equals
    computing it directly."""
    import copy

    import torch

    from modlens.drift.weights import _rows

    base = tiny_model("gpt2", tokenizer=tokenizer, n_layers=1, d_model=16, n_heads=2, n_ctx=16)
    hf = copy.deepcopy(base.hf)
    with torch.no_grad():
        gen = torch.Generator().manual_seed(0)
        hf.transformer.wte.weight.add_(0.05 * torch.randn(hf.transformer.wte.weight.shape, generator=gen))
    tuned = base.with_weights(hf)
    frame = run_weight_drift(base, tuned).set_index("matrix")
    direct = _rows("W_U", base.bridge.W_U, tuned.bridge.W_U, 8)[0]
    for column in ("rel_change", "cosine", "sv_rel_change", "sv_share", "angle_in", "angle_out"):
        assert frame.loc["W_U", column] == pytest.approx(direct[column], rel=1e-9, abs=1e-9)
    assert frame.loc["W_U", "angle_in"] == frame.loc["W_E", "angle_out"] > 0


def test_parallel_decompositions_match_sequential(planted_pair):
    """Two threads (base and tuned decomposed side by side) give the one-thread result and restore the setting."""
    import torch

    _, base, tuned = planted_pair
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        parallel = run_weight_drift(base, tuned)
        assert torch.get_num_threads() == 2
        torch.set_num_threads(1)
        sequential = run_weight_drift(base, tuned)
    finally:
        torch.set_num_threads(threads)
    columns = ["rel_change", "cosine", "sv_rel_change", "sv_share", "angle_in", "angle_out"]
    np.testing.assert_allclose(parallel[columns].to_numpy(float), sequential[columns].to_numpy(float), atol=1e-9)
