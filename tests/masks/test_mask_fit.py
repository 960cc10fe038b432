"""fit_mask: recovers the known heads of the hand-written model, is deterministic, rejects bad input."""

import pytest
import torch

from modlens.components import Component
from modlens.masks import MaskError, fit_mask
from modlens.models import tiny_model

TRUTH = {"A": {Component(0, "head", 0)}, "B": {Component(0, "head", 1)}}


def precision_recall(found: set, truth: set) -> tuple[float, float]:
    hit = len(found & truth)
    return hit / max(1, len(found)), hit / len(truth)


@pytest.mark.parametrize("algorithm", ["continuous_sparsification", "hard_concrete"])
@pytest.mark.parametrize("subroutine", ["A", "B"])
def test_component_mask_recovers_the_known_head(two_heads, batches, algorithm, subroutine):
    mask = fit_mask(two_heads, batches[subroutine], algorithm=algorithm, steps=100, seed=0)
    precision, recall = precision_recall(set(mask.components()), TRUTH[subroutine])
    assert precision >= 0.9 and recall >= 0.9, [str(c) for c in mask.components()]
    assert mask.meta["algorithm"] == algorithm and mask.granularity == "component"


@pytest.mark.parametrize("algorithm", ["continuous_sparsification", "hard_concrete"])
def test_weight_mask_lands_on_the_known_head(two_heads, batches, algorithm):
    mask = fit_mask(two_heads, batches["A"], granularity="weight", algorithm=algorithm, steps=150, n_samples=2, seed=0)
    found = set(mask.components())
    precision, recall = precision_recall(found, TRUTH["A"])
    assert precision >= 0.9 and recall >= 0.9, [str(c) for c in found]
    assert 0 < mask.density < 0.05  # a handful of weights out of ~5k
    assert set(mask.units) == {f"blocks.0.attn.{m}" for m in "qkvo"} | {"blocks.0.mlp.in", "blocks.0.mlp.out"}


def test_fit_is_deterministic_under_a_seed(two_heads, batches):
    kwargs = {"algorithm": "hard_concrete", "steps": 20, "sparsity": 0.5}
    a = fit_mask(two_heads, batches["A"], seed=3, **kwargs)
    b = fit_mask(two_heads, batches["A"], seed=3, **kwargs)
    assert a.equals(b) and a.meta["final_task_loss"] == b.meta["final_task_loss"]


def test_a_task_at_chance_warns_that_there_is_nothing_to_localize(batches):
    from ground_truth import D_VOCAB, disk_tokenizer  # type: ignore[import-not-found]

    untrained = tiny_model("gpt2", tokenizer=disk_tokenizer(D_VOCAB), n_layers=1, d_model=32, n_heads=4,
                           d_mlp=16, n_ctx=8, seed=1)  # fmt: skip
    with pytest.warns(UserWarning, match="nothing to localize"):
        fit_mask(untrained, batches["A"], steps=1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"steps": 0}, "steps must be a positive"),
        ({"sparsity": 1.5}, "sparsity must lie strictly between 0 and 1"),
        ({"sparsity": 0.0}, "sparsity must lie strictly between 0 and 1"),
        ({"algorithm": "magic"}, "unknown mask algorithm 'magic'"),
        ({"granularity": "layer"}, "unknown granularity 'layer'"),
    ],
)
def test_bad_options_are_one_clear_error(two_heads, batches, kwargs, message):
    with pytest.raises(MaskError, match=message):
        fit_mask(two_heads, batches["A"], **kwargs)


def test_fitting_leaves_the_model_unchanged(two_heads, batches):
    before = two_heads.bridge(batches["B"].tokens)
    fit_mask(two_heads, batches["B"], steps=5)
    torch.testing.assert_close(two_heads.bridge(batches["B"].tokens), before, rtol=0, atol=0)
