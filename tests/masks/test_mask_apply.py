"""Running under a mask: a full mask equals the model, hooks never outlive the block, weight and
component masks agree where they should."""

import pytest
import torch

from modlens.components import Component
from modlens.masks import Mask, MaskError, masked, masked_logits
from modlens.masks.apply import weight_shapes
from modlens.masks.weights import weight_modules
from modlens.tasks import SyntheticTask

ATOL = 1e-5  # fp32, a handful of layers


def _batch(model, layout):
    return SyntheticTask.from_name("reverse", layout).sample(8, seed=0)


@pytest.mark.parametrize("replacement", ["zero", "mean"])
def test_full_component_mask_equals_the_model(family_model, layout, replacement):
    batch = _batch(family_model, layout)
    clean = family_model.logits(batch.tokens)
    out = masked_logits(family_model, Mask.full(family_model.spec), batch, replacement=replacement)
    torch.testing.assert_close(out, clean, rtol=0, atol=ATOL)
    # ablating the empty set is the same invariant from the other side
    nothing = ~Mask.full(family_model.spec)
    out = masked_logits(family_model, nothing, batch, keep="outside", replacement=replacement)
    torch.testing.assert_close(out, clean, rtol=0, atol=ATOL)


def test_full_weight_mask_equals_the_model_and_parametrizations_are_removed(family_model, layout):
    batch = _batch(family_model, layout)
    shape = dict(Mask.full(family_model.spec).shape)
    units = {k: torch.ones(s, dtype=torch.bool) for k, s in weight_shapes(family_model).items()}
    out = masked_logits(family_model, Mask("weight", units, shape), batch, replacement="zero")
    torch.testing.assert_close(out, family_model.logits(batch.tokens), rtol=0, atol=ATOL)
    assert not any(hasattr(m, "parametrizations") for m in weight_modules(family_model.bridge).values())


def test_zeroing_mlp_out_weights_equals_zeroing_the_neurons(family_model, layout):
    batch = _batch(family_model, layout)
    spec = family_model.spec
    neurons = [Component(0, "neuron", n) for n in range(spec.d_mlp)]
    by_component = masked_logits(family_model, Mask.from_components(neurons, spec), batch, keep="outside",
                                 replacement="zero")  # fmt: skip
    shape = dict(Mask.full(spec).shape)
    units = {k: torch.zeros(s, dtype=torch.bool) for k, s in weight_shapes(family_model).items()}
    units["blocks.0.mlp.out"] = torch.ones_like(units["blocks.0.mlp.out"])
    by_weight = masked_logits(family_model, Mask("weight", units, shape), batch, keep="outside", replacement="zero")
    torch.testing.assert_close(by_weight, by_component, rtol=0, atol=ATOL)
    assert (by_weight - family_model.logits(batch.tokens)).abs().max() > 1e-3  # the edit did something


def test_hooks_are_removed_even_after_an_exception(two_heads, batches):
    batch = batches["A"]
    clean = two_heads.logits(batch.tokens)
    head_a = Mask.from_components([Component(0, "head", 0)], two_heads.spec)
    with pytest.raises(RuntimeError, match="boom"), masked(two_heads, head_a, keep="outside", replacement="zero"):
        raise RuntimeError("boom")
    torch.testing.assert_close(two_heads.bridge(batch.tokens), clean, rtol=0, atol=ATOL)


def test_removing_the_known_head_breaks_only_its_subroutine(two_heads, eval_batches):
    head_a = Mask.from_components([Component(0, "head", 0)], two_heads.spec)
    acc = {}
    for name, batch in eval_batches.items():
        logits = masked_logits(two_heads, head_a, batch, keep="outside", replacement="mean")
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
        masked_logits(two_heads, weights, batches["A"], replacement="mean")


def test_a_reference_batch_fixes_the_baseline_of_every_scored_batch(two_heads, eval_batches):
    """Scoring A and B under one mask uses the reference's means, equal to a forward patched by hand."""
    from modlens.masks import mean_baseline
    from modlens.tasks import Batch

    reference = Batch.concat([eval_batches["A"][:40], eval_batches["B"][40:]])
    head_a = Mask.from_components([Component(0, "head", 0)], two_heads.spec)
    _, cache = two_heads.bridge.run_with_cache(reference.tokens, names_filter=["blocks.0.attn.hook_z"])
    mean_z = cache["blocks.0.attn.hook_z"].mean(0)  # [pos, head, d_head]

    def keep_head_0(z, hook):
        out = mean_z.expand_as(z).clone()
        out[:, :, 0] = z[:, :, 0]
        return out

    for batch in eval_batches.values():
        by_hand = two_heads.bridge.run_with_hooks(batch.tokens, fwd_hooks=[("blocks.0.attn.hook_z", keep_head_0)])
        got = masked_logits(two_heads, head_a, batch, reference=reference)
        torch.testing.assert_close(got, by_hand, rtol=0, atol=ATOL)
        again = masked_logits(two_heads, head_a, batch, reference=mean_baseline(two_heads, reference))
        torch.testing.assert_close(again, got, rtol=0, atol=0)
    # without a reference each batch is its own baseline (the earlier default): B's baseline differs
    own = masked_logits(two_heads, head_a, eval_batches["B"])
    assert (own - masked_logits(two_heads, head_a, eval_batches["B"], reference=reference)).abs().max() > 1e-3


def test_masked_scores_equal_one_forward_per_mask(two_heads, eval_batches):
    from modlens.masks import masked_scores
    from modlens.tasks.metrics import answer_accuracy

    batch = eval_batches["A"]
    spec = two_heads.spec
    masks = [Mask.from_components([Component(0, "head", h)], spec) for h in range(4)] + [Mask.full(spec)]
    masks.append(masks[0].random_like(7))
    for keep in ("inside", "outside"):
        for replacement in ("mean", "zero"):
            stacked = masked_scores(two_heads, masks, batch, metric=answer_accuracy, keep=keep, replacement=replacement)
            one_by_one = [
                float(answer_accuracy(masked_logits(two_heads, m, batch, keep=keep, replacement=replacement), batch))
                for m in masks
            ]
            assert stacked == pytest.approx(one_by_one, abs=0)


def test_mean_baseline_belongs_to_its_model_and_its_length(two_heads, batches):
    from modlens.masks import fit_mask, mean_baseline
    from modlens.tasks import Batch

    means = mean_baseline(two_heads, batches["A"])
    assert means.n_pos == 5 and set(means.means) == {"blocks.0.attn.hook_z", "blocks.0.mlp.hook_post"}
    other = two_heads.with_weights(two_heads.hf)
    with pytest.raises(MaskError, match="another model"), masked(other, Mask.full(other.spec), reference=means):
        pass
    short = Batch(batches["A"].tokens[:, :4], batches["A"].answer_mask[:, :4])
    with pytest.raises(MaskError, match="reference batch has sequences of 4 tokens"):
        fit_mask(two_heads, batches["A"], steps=1, reference=short)
    with pytest.raises(MaskError, match="covers 4 positions but the input has 5"):
        masked_logits(two_heads, Mask.full(two_heads.spec), batches["A"], reference=short)
