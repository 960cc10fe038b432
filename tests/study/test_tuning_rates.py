"""The study's choice of learning rate (``tune_checkpoint``) and the fixed-budget arm it keeps."""

import dataclasses

import torch

from modlens.study.finetuning import finetune_config, tune_checkpoint
from modlens.study.presets import StudyConfig
from modlens.tasks import SyntheticTask
from modlens.training import FinetuneConfig, finetune

# a target no rate reaches in the budget: the rate is chosen on final accuracy
UNREACHABLE = FinetuneConfig(
    max_steps=30, fixed_steps=10, target_accuracy=1.0, eval_every=10, batch_size=16, n_val=64, replay_fraction=0.0
)


def test_a_later_rate_that_wins_gets_the_fixed_budget_snapshot_of_its_own_run(small_trajectory, layout) -> None:
    # the first (largest) rate wrecks the model, so the second wins, and its snapshot comes from a rerun
    study = StudyConfig(lr_grid=(1e-3, 3.0), finetune=UNREACHABLE)
    base = small_trajectory.checkpoints[300]
    task = SyntheticTask.from_name("reverse", layout)
    tuning = tune_checkpoint(base, study, task)
    assert tuning.lr == 1e-3 and tuning.tried[3.0][2] < tuning.tried[1e-3][2]
    assert tuning.target.steps == UNREACHABLE.max_steps and not tuning.target.reached_target
    whole_run = finetune(base, task, finetune_config(study, 1e-3, 30, 10), progress=False)
    assert whole_run.fixed_budget is not None
    expected, kept = whole_run.fixed_budget.hf.state_dict(), tuning.fixed_budget.hf.state_dict()
    assert expected.keys() == kept.keys() and all(torch.equal(expected[k], kept[k]) for k in expected)
    target = tuning.target.model.hf.state_dict()
    assert any(not torch.equal(target[k], kept[k]) for k in kept)  # 30 steps are not 10


def test_the_first_rate_keeps_its_snapshot_without_a_rerun(small_trajectory, layout) -> None:
    study = StudyConfig(lr_grid=(1e-3, 1e-9), finetune=dataclasses.replace(UNREACHABLE, fixed_steps=20))
    base = small_trajectory.checkpoints[300]
    task = SyntheticTask.from_name("reverse", layout)
    tuning = tune_checkpoint(base, study, task)
    assert tuning.lr == 1e-3
    whole_run = finetune(base, task, finetune_config(study, 1e-3, 30, 20), progress=False)
    assert whole_run.fixed_budget is not None
    expected, kept = whole_run.fixed_budget.hf.state_dict(), tuning.fixed_budget.hf.state_dict()
    assert all(torch.equal(expected[k], kept[k]) for k in expected)
