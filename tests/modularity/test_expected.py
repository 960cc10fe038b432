"""Overlaps against chance: exact expectations by hand and against Monte Carlo; random masks have no excess."""

import math

import numpy as np
import pytest
import torch

from modlens.masks import Mask, MaskError, unit_groups
from modlens.models.spec import ModelSpec
from modlens.modularity import (
    circuit_overlap,
    expected_intersection,
    expected_iomin,
    expected_iou,
    expected_precision,
    expected_recall,
    overlap_excess,
)

SPEC = ModelSpec(architecture="GPTNeoXForCausalLM", n_layers=2, n_heads=4, n_kv_heads=4, d_model=16, d_head=4,
                 d_mlp=12, d_vocab=10, n_ctx=8)  # fmt: skip


def mask(heads: dict[int, list[int]], neurons: dict[int, list[int]]) -> Mask:
    units = {"head": torch.zeros(2, 4, dtype=torch.bool), "neuron": torch.zeros(2, 12, dtype=torch.bool)}
    for layer, idx in heads.items():
        units["head"][layer, idx] = True
    for layer, idx in neurons.items():
        units["neuron"][layer, idx] = True
    return Mask.full(SPEC).replace(units)


def test_one_group_by_hand():
    # 2 of 4 heads each: the overlap is 0, 1, 2 with probabilities 1/6, 4/6, 1/6
    a, b = mask({0: [0, 1]}, {}), mask({0: [2, 3]}, {})
    assert expected_intersection(a, b) == pytest.approx(1.0)
    assert expected_precision(a, b) == expected_recall(a, b) == expected_iomin(a, b) == pytest.approx(0.5)
    assert expected_iou(a, b) == pytest.approx(4 / 6 * 1 / 3 + 1 / 6 * 1)
    assert overlap_excess(a, b) == pytest.approx({"precision": -0.5, "recall": -0.5, "iou": -7 / 18, "iomin": -0.5})


def test_groups_are_layers_and_counts_add_over_them():
    a = mask({0: [0], 1: [0, 1, 2]}, {1: list(range(6))})
    b = mask({0: [1, 2], 1: [3]}, {0: [0], 1: [6, 7, 8]})
    assert [tuple(g.shape) for g in unit_groups(a).values()] == [(2, 4), (2, 12)]
    # heads: 1*2/4 + 3*1/4; neurons: 0 (layer 0 of a is empty) + 6*3/12
    assert expected_intersection(a, b) == pytest.approx(0.5 + 0.75 + 1.5)
    assert math.isnan(expected_precision(mask({}, {}), b)) and math.isnan(expected_iou(mask({}, {}), mask({}, {})))


def test_expectations_match_monte_carlo_over_random_masks_of_the_same_sizes():
    a = mask({0: [0, 1], 1: [2]}, {0: [0, 1, 2, 3, 4], 1: [0, 1]})
    b = mask({0: [3], 1: [0, 1, 2]}, {0: [5, 6, 7], 1: list(range(8))})
    draws = 3000
    inter, ious = np.empty(draws), np.empty(draws)
    for i in range(draws):
        ra, rb = a.random_like(2 * i), b.random_like(2 * i + 1)
        inter[i], ious[i] = (ra & rb).size, ra.iou(rb)
    for got, want in ((inter, expected_intersection(a, b)), (ious, expected_iou(a, b))):
        assert abs(got.mean() - want) < 4 * got.std() / math.sqrt(draws)
    # the ratio approximation E|A∧B| / (|A| + |B| - E|A∧B|) is close but not what is reported
    e = expected_intersection(a, b)
    assert abs(e / (a.size + b.size - e) - expected_iou(a, b)) < 0.02


def test_random_masks_have_no_excess_and_identical_masks_a_positive_one():
    base = mask({0: [0, 1], 1: [1]}, {0: [1, 3, 5, 7], 1: [0, 2, 4, 6, 8, 10]})
    tuned = mask({0: [2], 1: [0, 3]}, {0: [0, 1, 2], 1: list(range(9))})
    # the expectations depend on the per-group sizes only, which every random draw keeps
    first_a, first_b = base.random_like(0), tuned.random_like(1)
    raw, excess = circuit_overlap(first_a, first_b), overlap_excess(first_a, first_b)
    chance = {k: raw[k] - excess[k] for k in raw}
    expected = {
        "precision": expected_precision(base, tuned),
        "recall": expected_recall(base, tuned),
        "iou": expected_iou(base, tuned),
        "iomin": expected_iomin(base, tuned),
    }
    assert chance == pytest.approx(expected)
    draws = 1500
    overlaps = [circuit_overlap(base.random_like(2 * i), tuned.random_like(2 * i + 1)) for i in range(draws)]
    excesses = np.array([[o[k] - chance[k] for k in chance] for o in overlaps])
    mean, se = excesses.mean(0), excesses.std(0) / math.sqrt(draws)
    assert (np.abs(mean) < 4 * se).all(), (mean, se)
    same = overlap_excess(base, base)
    assert all(v > 0.3 for v in same.values()), same
    raw = circuit_overlap(base, base)
    assert same["iou"] == pytest.approx(raw["iou"] - expected_iou(base, base))


def test_large_weight_masks_are_cheap_and_agree_with_the_ratio_approximation():
    shape = {"n_layers": 1, "n_heads": 4, "n_kv_heads": 4, "d_model": 256, "d_head": 64, "d_mlp": 256}
    gen = torch.Generator().manual_seed(0)
    density = {"blocks.0.mlp.in": 0.3, "blocks.0.mlp.out": 0.1}
    units_a = {k: torch.rand(256, 256, generator=gen) < p for k, p in density.items()}
    units_b = {k: torch.rand(256, 256, generator=gen) < 0.2 for k in units_a}
    a, b = Mask("weight", units_a, shape), Mask("weight", units_b, shape)
    e = expected_intersection(a, b)
    # the intersection is concentrated: E[I / (|A|+|B|-I)] is its ratio of means to within 1e-4
    assert expected_iou(a, b) == pytest.approx(e / (a.size + b.size - e), abs=1e-4)


def test_masks_of_different_shapes_raise():
    other = Mask.full(ModelSpec(**{**SPEC.as_dict(), "n_layers": 3}))
    with pytest.raises(MaskError, match="differ in kind or model shape"):
        expected_iou(Mask.full(SPEC), other)
