"""The study's mechanistic metrics on a small pretrained model, fine-tuned by no step: invariants that must hold."""

import copy
import dataclasses
import math

import numpy as np
import pytest
import torch

from modlens.study.mechanisms import base_parts, mechanism_metrics, same_weights
from modlens.study.phases import mechanism_names
from modlens.study.presets import STUDY_FAMILY, MaskConfig, StudyConfig
from modlens.study.tasks import StudyTasks


@pytest.fixture(scope="module")
def measured(small_trajectory):
    study = StudyConfig(
        family=dataclasses.replace(STUDY_FAMILY, n_digits=4, write_intermediates=False, step_fraction=0.0),
        masks=MaskConfig(steps=30, n_examples=64, seeds=(0, 1)),
        n_eval=64,
    )
    base = small_trajectory.checkpoints[900]
    # the "fine-tune" is the base itself: the tuned model's parts are the base's, and reuse is the same either way
    metrics, layers = mechanism_metrics(base, base, StudyTasks(study))
    return study, metrics, layers


def test_every_mechanism_is_reported(measured) -> None:
    study, metrics, layers = measured
    names = {name for name, _ in mechanism_names(study)} - {"weight_drift_upper_share", "cka_drift_upper_share"}
    assert {name for name, _ in metrics} == names
    assert 0.0 <= metrics[("mask_rejection_rate", "")] <= 1.0
    assert {row["model"] for row in layers} == {"base", "tuned"}


def test_the_same_model_gives_the_same_reuse_from_either_side(measured) -> None:
    study, metrics, _ = measured
    for sub in study.subroutines:
        base_side, tuned_side = metrics[("reuse_specificity", sub)], metrics[("reuse_specificity_tuned_mask", sub)]
        assert (math.isnan(base_side) and math.isnan(tuned_side)) or base_side == tuned_side
        precision = metrics[("inheritance_precision_excess", sub)]
        assert math.isnan(precision) or precision > 0  # a part overlaps itself far beyond chance


def test_without_written_steps_there_is_no_structural_compositionality(measured) -> None:
    _, metrics, _ = measured
    assert np.isnan(metrics[("structural_compositionality", "")])


def test_base_parts_are_learned_once_and_shared(measured, small_trajectory, tmp_path) -> None:
    """The first unit of a checkpoint writes its base parts; the next reads them, and the metrics are the same."""
    study, metrics, _ = measured
    base = small_trajectory.checkpoints[900]
    tasks = StudyTasks(study)
    file = tmp_path / "parts" / "L2-step900.pt"
    learned = base_parts(base, tasks, file)
    assert file.is_file() and not list(file.parent.glob(".*.tmp*"))
    stamp = file.stat().st_mtime_ns
    read = base_parts(base, tasks, file)
    assert file.stat().st_mtime_ns == stamp  # read, not learned and written again
    assert read.keys() == learned.keys() == {(s, seed) for s in study.subroutines for seed in study.masks.seeds}
    for key, part in learned.items():
        assert (read[key].passed, read[key].carries) == (part.passed, part.carries)
        assert read[key].mask.components() == part.mask.components()
    shared, _ = mechanism_metrics(base, base, tasks, base_parts_file=file)
    assert shared.keys() == metrics.keys()
    for key, value in metrics.items():
        assert (math.isnan(value) and math.isnan(shared[key])) or shared[key] == pytest.approx(value), key


def test_an_untuned_fine_tune_is_measured_once_for_every_method(measured, small_trajectory, tmp_path) -> None:
    """A fine-tune that took no step is the base: the first unit keeps its metrics, the other methods read them."""
    study, metrics, layers = measured
    base = small_trajectory.checkpoints[900]
    tasks = StudyTasks(study)
    file = tmp_path / "parts" / "L2-step900.pt"
    untuned = file.with_name("L2-step900-untuned.pt")

    def copy_of_base(label: str):
        return base.with_weights(copy.deepcopy(base.hf), source=f"{base.source}+{label}")

    first = mechanism_metrics(base, copy_of_base("finetuned"), tasks, base_parts_file=file)
    assert untuned.is_file()
    stamp = untuned.stat().st_mtime_ns
    second = mechanism_metrics(base, copy_of_base("finetuned:lora"), tasks, base_parts_file=file)
    assert untuned.stat().st_mtime_ns == stamp  # read, not measured again
    for found, found_layers in (first, second):
        assert found.keys() == metrics.keys() and found_layers == layers
        for key, value in metrics.items():
            assert (math.isnan(value) and math.isnan(found[key])) or found[key] == value, key


def test_weights_that_differ_in_one_number_are_not_the_base(small_trajectory) -> None:
    base = small_trajectory.checkpoints[900]
    changed = copy.deepcopy(base.hf)
    with torch.no_grad():
        changed.gpt_neox.layers[1].mlp.dense_4h_to_h.weight[0, 0] += 1e-6
    assert same_weights(base, base.with_weights(copy.deepcopy(base.hf)))
    assert not same_weights(base, base.with_weights(changed))
    assert not same_weights(base, small_trajectory.checkpoints[300])
