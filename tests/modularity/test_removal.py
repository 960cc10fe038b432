"""Removal parts against known truth: the hand-written model whose operations live in known neurons."""

import pytest
from neox_truth import COMPOSITES, composite_batch, neuron_mask, neurons, primitive_batch  # type: ignore[import-not-found]

from modlens.components import Component
from modlens.masks import MaskError, mean_baseline
from modlens.masks.removal import check_necessity, fit_removal_mask
from modlens.modularity import reuse_specificity, run_reuse
from modlens.tasks import Batch


def others(n: int, seed: int) -> Batch:
    return Batch.concat([primitive_batch("G", n, seed=seed), primitive_batch("H", n, seed=seed + 1)])


def composites(n: int = 32) -> tuple[dict, dict]:
    batches = {c: composite_batch(c[0], c[1], n, seed=k) for k, c in enumerate(COMPOSITES)}
    return {c: b for c, b in batches.items() if "F" in c}, {c: b for c, b in batches.items() if "F" not in c}


@pytest.fixture(scope="module")
def part(direct, reference):
    means = mean_baseline(direct, reference)
    return fit_removal_mask(direct, primitive_batch("F", 256, seed=5), others(128, 6), reference=means, steps=100)


def test_the_learned_part_is_exactly_f_s_neurons(part):
    assert set(part.components()) == {Component(0, "neuron", n) for n in neurons("F")}
    assert part.meta["kind"] == "removal"


def test_the_part_passes_its_gate_and_random_or_unselective_parts_do_not(direct, reference, part):
    own, rest = primitive_batch("F", 128, seed=8), others(64, 9)
    gate = check_necessity(direct, part, own, rest, reference=reference)
    assert gate.passed and gate.removed == 1.0 and gate.selectivity == 1.0
    assert max(gate.random_selectivity) < 0.8
    every = neuron_mask(direct, "F", "G", "H")  # breaks F, but G and H too
    unselective = check_necessity(direct, every, own, rest, reference=reference)
    assert not unselective.passed and "random parts" in unselective.reason
    too_small = check_necessity(direct, neuron_mask(direct, "G"), own, rest, reference=reference)
    assert not too_small.passed and "takes away" in too_small.reason


def test_reuse_of_the_base_part_is_known_in_both_fine_tunes(direct, rerouted, reference, part):
    """The study's primary metric: the base's part ablated in a model that reuses it, and in one that does not."""
    with_f, without_f = composites()
    reused = reuse_specificity(run_reuse(direct, part, with_f, without_f, reference=mean_baseline(direct, reference)))
    moved = reuse_specificity(
        run_reuse(rerouted, part, with_f, without_f, reference=mean_baseline(rerouted, reference))
    )
    assert reused > 0.8 and abs(moved) < 0.1


def test_bad_options(direct, reference):
    with pytest.raises(MaskError, match="steps"):
        fit_removal_mask(direct, primitive_batch("F", 8), others(4, 0), steps=0)
    with pytest.raises(MaskError, match="differ in length"):
        fit_removal_mask(
            direct,
            primitive_batch("F", 8),
            Batch(primitive_batch("G", 4).tokens[:, :3], primitive_batch("G", 4).answer_mask[:, :3]),
        )
