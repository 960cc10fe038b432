"""Activation drift: CKA 1 for a model with itself; a planted change shows from its layer upward only."""

import numpy as np
import pytest
import torch

from modlens.drift import HOOKS, MinibatchCKA, linear_cka, run_activation_drift
from modlens.drift.activations import _activations, real_positions
from modlens.errors import PairMismatchError, TaskError
from modlens.models import Model
from modlens.tasks import Batch, SyntheticTask


@pytest.fixture(scope="module")
def batch(layout) -> Batch:
    return SyntheticTask.from_name("reverse", layout).sample(12, split="test", seed=0)


def test_model_with_itself(family_model, batch):
    frame = run_activation_drift(family_model, family_model, batch, batch_size=4)
    assert len(frame) == family_model.spec.n_layers * len(HOOKS)
    assert list(frame.columns) == ["layer", "hook", "n_tokens", "linear_cka", "debiased_cka", "cosine"]
    np.testing.assert_allclose(frame[["linear_cka", "debiased_cka", "cosine"]].to_numpy(), 1.0, atol=1e-5)
    assert (frame["n_tokens"] == batch.tokens.numel()).all()


def test_planted_change_shows_from_its_layer_upward(planted_pair, batch):
    _, base, tuned = planted_pair
    frame = run_activation_drift(base, tuned, batch, measures=("linear_cka", "debiased_cka", "cosine", "rel_change"))
    value = frame.set_index(["layer", "hook"])
    unchanged = [(0, h) for h in HOOKS] + [(1, "attn_out")]  # attention in layer 1 runs before its MLP
    changed = [(1, "mlp_out"), (1, "resid_post")] + [(2, h) for h in HOOKS]
    np.testing.assert_allclose(value.loc[unchanged, "rel_change"], 0.0, atol=1e-6)
    np.testing.assert_allclose(value.loc[unchanged, ["linear_cka", "cosine"]].to_numpy(), 1.0, atol=1e-5)
    assert (value.loc[changed, "rel_change"] > 1e-3).all()
    assert (value.loc[changed, "cosine"] < 1 - 1e-5).all()


def test_one_minibatch_matches_linear_cka_of_all_positions(planted_pair, batch):
    _, base, tuned = planted_pair
    frame = run_activation_drift(base, tuned, batch, batch_size=len(batch), measures=("linear_cka",))
    index = 2 * len(HOOKS) + HOOKS.index("resid_post")
    with torch.no_grad():
        x = _activations(base, batch.tokens)[index].reshape(-1, base.spec.d_model)
        y = _activations(tuned, batch.tokens)[index].reshape(-1, base.spec.d_model)
    got = frame.set_index(["layer", "hook"]).loc[(2, "resid_post"), "linear_cka"]
    assert got == pytest.approx(linear_cka(x, y), abs=1e-5)


def test_hooks_match_the_bridge_cache(family_model, batch):
    """The capture on the HF modules returns, hook for hook, what the bridge's ``run_with_cache`` stores."""
    acts = _activations(family_model, batch.tokens[:3])
    names = [f"blocks.{layer}.hook_{hook}" for layer in range(family_model.spec.n_layers) for hook in HOOKS]
    _, cache = family_model.bridge.run_with_cache(batch.tokens[:3], names_filter=lambda n: n in names)
    assert acts.shape == (len(names), *batch.tokens[:3].shape, family_model.spec.d_model)
    for act, name in zip(acts, names, strict=True):
        torch.testing.assert_close(act, cache[name], rtol=1e-5, atol=1e-5, msg=name)  # float32


def test_activation_drift_matches_a_loop_over_the_bridge_cache(planted_pair, batch):
    """Reference: per-hook activations from the bridge's cache, fed to one ``MinibatchCKA`` per hook and measure,
    on a batch whose rows end at different positions (what follows a row's last answer token is padding)."""
    _, base, tuned = planted_pair
    mask = torch.zeros_like(batch.answer_mask)
    mask[torch.arange(len(batch)), batch.tokens.shape[1] - 1 - torch.arange(len(batch)) % 4] = True
    batch = Batch(batch.tokens, mask, batch.task)
    measures = ("linear_cka", "debiased_cka", "cosine", "rel_change")
    frame = run_activation_drift(base, tuned, batch, batch_size=5, measures=measures).set_index(["layer", "hook"])
    valid_all = real_positions(batch.answer_mask)
    for layer in range(base.spec.n_layers):
        for hook in HOOKS:
            name = f"blocks.{layer}.hook_{hook}"
            linear, debiased = MinibatchCKA(debiased=False), MinibatchCKA(debiased=True)
            cos, diff, norm = [], [], []
            for start in range(0, len(batch), 5):
                tokens, valid = batch.tokens[start : start + 5], valid_all[start : start + 5]
                x = base.bridge.run_with_cache(tokens, names_filter=name)[1][name][valid]
                y = tuned.bridge.run_with_cache(tokens, names_filter=name)[1][name][valid]
                linear.update(x, y)
                debiased.update(x, y)
                cos.append(torch.nn.functional.cosine_similarity(x, y, dim=-1))
                diff.append((y - x).norm(dim=-1))
                norm.append(x.norm(dim=-1))
            row = frame.loc[(layer, hook)]
            assert row["n_tokens"] == int(valid_all.sum())
            assert row["linear_cka"] == pytest.approx(linear.value(), abs=1e-5)
            assert row["debiased_cka"] == pytest.approx(debiased.value(), abs=1e-5)
            assert row["cosine"] == pytest.approx(float(torch.cat(cos).mean()), abs=1e-5)
            assert row["rel_change"] == pytest.approx(float(torch.cat(diff).sum() / torch.cat(norm).sum()), abs=1e-5)


def test_real_positions_drop_right_padding():
    mask = torch.tensor([[False, False, True, False, False], [False, True, True, True, True]])
    expected = torch.tensor([[True, True, True, False, False], [True, True, True, True, True]])
    assert torch.equal(real_positions(mask), expected)


def test_bad_input(family_model, batch, tokenizer):
    with pytest.raises(TaskError, match="unknown measures"):
        run_activation_drift(family_model, family_model, batch, measures=("svcca",))
    with pytest.raises(TaskError, match="batch_size"):
        run_activation_drift(family_model, family_model, batch, batch_size=0)


def test_tokenizer_mismatch_is_refused(family_model, batch, tmp_path):
    from transformers import AutoTokenizer

    from modlens.tasks import TaskLayout

    other = TaskLayout(n_digits=3).vocab.tokenizer()
    other.add_tokens(["<extra>"])
    other.save_pretrained(tmp_path)
    tuned = Model(hf=family_model.hf, tokenizer=AutoTokenizer.from_pretrained(tmp_path))
    with pytest.raises(PairMismatchError, match="tokenizers differ"):
        run_activation_drift(family_model, tuned, batch)


def test_capture_leaves_no_hooks_behind(family_model, batch):
    """Hooks go when the capture ends, by the early stop or by an error."""

    def hooks() -> int:
        return sum(len(m._forward_hooks) for m in family_model.hf.modules())

    _activations(family_model, batch.tokens[:2])
    assert hooks() == 0
    with pytest.raises(IndexError):
        _activations(family_model, torch.full((1, 4), 10**6))  # token ids past the vocabulary
    assert hooks() == 0
