"""Running under a mask: a full mask equals the model, hooks never outlive the block, weight and
component masks agree where they should."""

import pytest
import torch

from modlens.components import Component
from modlens.masks import Mask, MaskError, masked, masked_logits
from modlens.masks.apply import weight_shapes
from modlens.masks.units import weight_modules
from modlens.tasks import SyntheticTask

ATOL = 1e-5  # fp32, a handful of layers


def _batch(model, layout):
    return SyntheticTask.from_name("reverse", layout).sample(8, seed=0)


@pytest.mark.parametrize("method", ["zero", "mean"])
def test_full_component_mask_equals_the_model(family_model, layout, method):
    batch = _batch(family_model, layout)
    clean = family_model.logits(batch.tokens)
    out = masked_logits(family_model, Mask.full(family_model.spec), batch, method=method)
    torch.testing.assert_close(out, clean, rtol=0, atol=ATOL)
    # ablating the empty set is the same invariant from the other side
    nothing = ~Mask.full(family_model.spec)
    out = masked_logits(family_model, nothing, batch, keep="outside", method=method)
    torch.testing.assert_close(out, clean, rtol=0, atol=ATOL)


def test_full_weight_mask_equals_the_model_and_parametrizations_are_removed(family_model, layout):
    batch = _batch(family_model, layout)
    shape = dict(Mask.full(family_model.spec).shape)
    units = {k: torch.ones(s, dtype=torch.bool) for k, s in weight_shapes(family_model).items()}
    out = masked_logits(family_model, Mask("weight", units, shape), batch, method="zero")
    torch.testing.assert_close(out, family_model.logits(batch.tokens), rtol=0, atol=ATOL)
    assert not any(hasattr(m, "parametrizations") for m in weight_modules(family_model.bridge).values())


def test_zeroing_mlp_out_weights_equals_zeroing_the_neurons(family_model, layout):
    batch = _batch(family_model, layout)
    spec = family_model.spec
    neurons = [Component(0, "neuron", n) for n in range(spec.d_mlp)]
    by_component = masked_logits(family_model, Mask.from_components(neurons, spec), batch, keep="outside",
                                 method="zero")  # fmt: skip
    shape = dict(Mask.full(spec).shape)
    units = {k: torch.zeros(s, dtype=torch.bool) for k, s in weight_shapes(family_model).items()}
    units["blocks.0.mlp.out"] = torch.ones_like(units["blocks.0.mlp.out"])
    by_weight = masked_logits(family_model, Mask("weight", units, shape), batch, keep="outside", method="zero")
    torch.testing.assert_close(by_weight, by_component, rtol=0, atol=ATOL)
    assert (by_weight - family_model.logits(batch.tokens)).abs().max() > 1e-3  # the edit did something


def test_hooks_are_removed_even_after_an_exception(two_heads, batches):
    batch = batches["A"]
    clean = two_heads.logits(batch.tokens)
    head_a = Mask.from_components([Component(0, "head", 0)], two_heads.spec)
    with pytest.raises(RuntimeError, match="boom"), masked(two_heads, head_a, keep="outside", method="zero"):
        raise RuntimeError("boom")
    torch.testing.assert_close(two_heads.bridge(batch.tokens), clean, rtol=0, atol=ATOL)


def test_removing_the_known_head_breaks_only_its_subroutine(two_heads, eval_batches):
    head_a = Mask.from_components([Component(0, "head", 0)], two_heads.spec)
    acc = {}
    for name, batch in eval_batches.items():
        logits = masked_logits(two_heads, head_a, batch, keep="outside", method="mean")
        acc[name] = float((logits[:, 3].argmax(-1) == batch.tokens[:, 4]).float().mean())
    assert acc["A"] < 0.3 and acc["B"] == 1.0


def test_mask_for_another_shape_or_bad_option_is_one_clear_error(two_heads, family_model, batches):
    with pytest.raises(MaskError, match="another shape"), masked(family_model, Mask.full(two_heads.spec)):
        pass
    with pytest.raises(MaskError, match="reference batch"), masked(two_heads, Mask.full(two_heads.spec)):
        pass
    shape = dict(Mask.full(two_heads.spec).shape)
    weights = Mask("weight", {"blocks.0.mlp.out": torch.ones(16, 32, dtype=torch.bool)}, shape)
    with pytest.raises(MaskError, match="zero"):
        masked_logits(two_heads, weights, batches["A"], method="mean")
