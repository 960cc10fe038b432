"""The Mask type: set algebra and overlap on hand-made masks, component addresses, files, shape checks."""

import math

import pytest
import torch

from modlens.components import Component, parse_components
from modlens.masks import Mask, MaskError, iomin, iou, load_mask, pairwise_overlap, save_mask
from modlens.models import ModelSpec

SPEC = ModelSpec(
    architecture="GPT2LMHeadModel", n_layers=2, n_heads=4, n_kv_heads=4, d_model=32, d_head=8, d_mlp=8,
    d_vocab=20, n_ctx=16,
)  # fmt: skip


def mask_of(*names: str) -> Mask:
    return Mask.from_components(parse_components(names, SPEC), SPEC)


def test_iou_and_iomin_on_hand_made_masks():
    a = mask_of("L0H0", "L0H1", "L1N3")
    b = mask_of("L0H1", "L1N3", "L1N4", "L1H2")
    # intersection {L0H1, L1N3} = 2; union = 5; smaller mask has 3 units
    assert iou(a, b) == pytest.approx(2 / 5)
    assert iomin(a, b) == pytest.approx(2 / 3)
    assert a.iou(a) == 1.0 and a.iomin(mask_of("L0H0")) == 1.0
    assert math.isnan(iou(mask_of(), mask_of())) and math.isnan(iomin(a, mask_of()))
    frame = pairwise_overlap({"a": a, "b": b, "c": a})
    assert list(frame.columns) == ["a", "b", "iou", "iomin"] and len(frame) == 3
    assert frame.set_index(["a", "b"]).loc[("a", "c"), "iou"] == 1.0


def test_set_operations_and_size():
    a = mask_of("L0H0", "L0H1")
    b = mask_of("L0H1", "L1.mlp")
    assert (a & b).components() == [Component(0, "head", 1)]
    assert (a | b).size == 2 + 8  # L0H0, L0H1 and the 8 neurons of layer 1
    assert (a - b).components() == [Component(0, "head", 0)]
    assert (~a).size == a.n_units - 2
    assert a.n_units == 2 * 4 + 2 * 8
    assert Mask.full(SPEC).size == Mask.full(SPEC).n_units and Mask.full(SPEC).density == 1.0
    assert (a | ~a).equals(Mask.full(SPEC))


def test_density_by_layer_is_tidy():
    frame = mask_of("L0H0", "L0H1", "L1N0").density_by_layer()
    assert list(frame.columns) == ["layer", "group", "kept", "total", "density"]
    row = frame.set_index(["layer", "group"])
    assert row.loc[(0, "head"), "density"] == 0.5 and row.loc[(1, "neuron"), "kept"] == 1
    assert row.loc[(1, "head"), "density"] == 0.0


def test_random_like_keeps_sizes_per_layer_group_and_is_seeded():
    a = mask_of("L0H0", "L1N1", "L1N2", "L1H1", "L1H3")
    r1, r2 = a.random_like(3), a.random_like(3)
    assert r1.equals(r2) and not r1.equals(a.random_like(4))
    assert r1.units["head"].sum(1).tolist() == [1, 2] and r1.units["neuron"].sum(1).tolist() == [0, 2]
    draws = [a.random_like(seed) for seed in range(200)]
    hits = torch.stack([d.units["neuron"][1] for d in draws]).float().mean(0)  # every neuron of layer 1 drawn
    assert hits.min() > 0.1 and hits.max() < 0.4  # about 2/8 each


def test_component_mask_json_round_trip(tmp_path):
    a = Mask.from_components(parse_components(["L0H2", "L1N7"], SPEC), SPEC, task="reverse")
    path = save_mask(a, tmp_path / "m.json")
    b = load_mask(path)
    assert b.equals(a) and b.meta["task"] == "reverse"
    assert '"L0H2"' in path.read_text()


def test_weight_mask_safetensors_round_trip_and_component_conversion(tmp_path):
    shape = {"n_layers": 1, "n_heads": 2, "n_kv_heads": 2, "d_model": 4, "d_head": 2, "d_mlp": 3}
    units = {
        "blocks.0.attn.q": torch.zeros(4, 4, dtype=torch.bool),  # [out = head*d_head, in]
        "blocks.0.attn.o": torch.zeros(4, 4, dtype=torch.bool),  # [out, in = head*d_head]
        "blocks.0.mlp.out": torch.zeros(4, 3, dtype=torch.bool),  # [out, in = neuron]
    }
    units["blocks.0.attn.q"][3, 0] = True  # a weight of head 1
    units["blocks.0.mlp.out"][0, 2] = True  # a weight of neuron 2
    mask = Mask("weight", units, shape, {k: "out_in" for k in units})
    assert mask.components() == [Component(0, "head", 1), Component(0, "neuron", 2)]
    heads, _ = mask.component_density()
    torch.testing.assert_close(heads, torch.tensor([[0.0, 1 / 16]]), rtol=0, atol=1e-7)  # 1 of 8 q + 8 o weights
    assert mask.components(min_density=0.5) == [] and mask.to_component_mask().size == 2
    loaded = load_mask(save_mask(mask, tmp_path / "w.safetensors"))
    assert loaded.equals(mask) and loaded.granularity == "weight" and dict(loaded.layouts) == dict(mask.layouts)


def test_bad_inputs_raise_one_clear_error(tmp_path):
    other = ModelSpec(**{**SPEC.as_dict(), "n_layers": 3})
    with pytest.raises(MaskError, match=r"another shape.*n_layers 2 vs 3"):
        mask_of("L0H0").check_fits(other)
    with pytest.raises(MaskError, match="differ in kind or model shape"):
        mask_of("L0H0") & Mask.full(other)
    (tmp_path / "x.json").write_text('{"hello": 1}')
    with pytest.raises(MaskError, match="not a modlens mask"):
        load_mask(tmp_path / "x.json")
    with pytest.raises(MaskError, match="no mask file"):
        load_mask(tmp_path / "missing.json")
