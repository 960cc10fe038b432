"""The bridge path and the fast path read the same activations, and every replacement edits them alike; the fast
path refuses an architecture it does not know when it is built."""

import functools
from typing import Any

import pytest
import torch
from transformers import OPTConfig, OPTForCausalLM

from modlens import names
from modlens.ablation.sweep import _edit
from modlens.components import POINT_HOOKS, Component, Point, point_hook
from modlens.interventions import (
    BUILDERS,
    DecoderStack,
    InterventionError,
    ReplaceFn,
    bridge_activations,
    recording,
    reference_activations,
    replacement_fn,
    replacing_hook,
)
from modlens.masks import ALGORITHMS
from modlens.models import Model, load_model
from modlens.tasks import Batch, SyntheticTask, TaskLayout

TOL = {"rtol": 1e-5, "atol": 1e-5}


@pytest.fixture(scope="module")
def batches(layout: TaskLayout) -> tuple[Batch, Batch]:
    """The run that is edited and a reference run (patching's source) of the same length."""
    task = SyntheticTask.from_name("reverse", layout)
    return task.sample(6, split="test", seed=0), task.sample(6, split="test", seed=1)


def test_every_point_reads_the_same_on_both_paths(family_model: Model, batches: tuple[Batch, Batch]) -> None:
    tokens = batches[0].tokens
    points: list[tuple[int, Point]] = [(layer, p) for layer in range(family_model.spec.n_layers) for p in POINT_HOOKS]
    fast: dict[int, torch.Tensor] = {}
    with torch.no_grad(), recording(family_model, points, lambda i, value: fast.__setitem__(i, value.clone())):
        family_model.hf(input_ids=tokens, use_cache=False)
    slow = bridge_activations(family_model, tokens, [point_hook(layer, p) for layer, p in points])
    for i, (layer, point) in enumerate(points):
        expected = slow[point_hook(layer, point)]
        torch.testing.assert_close(fast[i].reshape(expected.shape), expected, **TOL)


def test_recording_removes_its_hooks_after_an_exception(family_model: Model, batches: tuple[Batch, Batch]) -> None:
    def hooks() -> int:
        return sum(len(m._forward_hooks) for m in family_model.hf.modules())

    before = hooks()
    with pytest.raises(RuntimeError, match="boom"), recording(family_model, [(0, "z")], lambda i, v: None):
        assert hooks() == before + 1
        raise RuntimeError("boom")
    assert hooks() == before


# what each kind's edit changes in its layer: the attention output, the MLP output, or the layer's input
EDITED: dict[str, Point] = {
    "head": "attn_out",
    "attn": "attn_out",
    "neuron": "mlp_out",
    "mlp": "mlp_out",
    "resid": "resid_pre",
}


@pytest.mark.parametrize("replacement", list(BUILDERS))
def test_every_replacement_edits_alike_on_both_paths(
    family_model: Model, batches: tuple[Batch, Batch], replacement: str
) -> None:
    """The fast path's edit of a layer's output (``ablation.sweep._edit``) equals the bridge's hook, for every
    replacement and kind of component; references come from the other batch on both paths."""
    batch, reference = batches
    components = [Component(1, "head", 2), Component(0, "attn"), Component(1, "neuron", 5), Component(0, "mlp")]
    components.append(Component(1, "resid"))
    stack = DecoderStack(family_model)
    records, ref_records = stack.record(batch.tokens), stack.record(reference.tokens)
    refs = reference_activations(family_model, reference.tokens, components)
    seen: dict[str, torch.Tensor] = {}

    def build(component: Component, values: torch.Tensor | None) -> ReplaceFn:
        return replacement_fn(replacement, values, seed=3)

    def keep(activation: torch.Tensor, hook: Any, *, name: str) -> None:
        seen[name] = activation.detach().clone()

    for c in components:
        torch.testing.assert_close(ref_records[c.layer].at(c), refs[c], **TOL)  # the same reference on both paths
        record = records[c.layer]
        fast = torch.empty_like(record.attn_out)
        _edit(fast, c, None, record, ref_records[c.layer], build, stack.w_o(c.layer), stack.w_out(c.layer))
        name = point_hook(c.layer, EDITED[c.kind])
        with torch.no_grad():
            family_model.bridge.run_with_hooks(
                batch.tokens,
                fwd_hooks=[replacing_hook(c, build(c, refs[c])), (name, functools.partial(keep, name=name))],
            )
        torch.testing.assert_close(fast, seen[name], **TOL)


def test_a_stack_on_an_architecture_without_a_fast_path_fails_when_built(tokenizer) -> None:
    config = OPTConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=4,
        ffn_dim=64,
        word_embed_proj_dim=32,
        max_position_embeddings=32,
        pad_token_id=0,
    )
    torch.manual_seed(0)
    model = load_model(OPTForCausalLM(config))
    with pytest.raises(InterventionError, match=r"the fast path supports .*; got OPTForCausalLM"):
        DecoderStack(model)


def test_unknown_replacements_name_the_known_ones() -> None:
    with pytest.raises(
        InterventionError, match="unknown replacement 'median'; choose one of zero, mean, resample, patch"
    ):
        replacement_fn("median", None)
    with pytest.raises(InterventionError, match="patching needs the activations"):
        replacement_fn("patch", None)


def test_registries_hold_the_names_users_type() -> None:
    """The CLI's choices come from ``modlens.names`` (no torch); the registries must hold exactly those names."""
    assert set(BUILDERS) == {*names.REPLACEMENTS, "patch"}  # patching's replacement is chosen by the command
    assert set(names.MASK_REPLACEMENTS) <= set(BUILDERS)
    assert tuple(ALGORITHMS) == names.ALGORITHMS
