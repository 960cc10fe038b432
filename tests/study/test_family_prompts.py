"""A family fine-tuned on prompt files (issue 17): tiny GPT-2 checkpoints with a text tokenizer, a family file with
``finetune`` and ``heldout_prompts``; the prompt metrics are measured, the synthetic tasks' metrics are NaN with
the reason, and malformed files are refused in one line before any unit runs."""

import dataclasses
import math
from pathlib import Path

import pandas as pd
import pytest
import torch

from modlens.errors import ConfigError
from modlens.masks.apply import mean_baseline
from modlens.models import loading
from modlens.models.model import Model
from modlens.names import FIXED_BUDGET
from modlens.study import PRESETS, run_study
from modlens.study.family_file import PROMPT_PRIMARY_METRICS, check_family, load_family_file
from modlens.study.finetuning import study_method, tune_checkpoint
from modlens.study.phases import MISSED_TARGET, mechanism_names
from modlens.study.prompt_phases import (
    NO_GATED_PAIR,
    PROMPT_MASKS,
    PROMPT_TASKS,
    measure_prompt_checkpoint,
    prompt_baseline,
    prompt_masks,
    split_prompts,
)
from modlens.study.reasoning import PROBE_METRICS
from modlens.tasks.prompts import load_prompt_batch
from tests.study.test_family_text import save_trajectory, text_tokenizer, write_prompts

TINY = PRESETS["tiny"]
DIGITS = [str(d) for d in range(10)]


def digit_prompts(n: int, *, offset: int = 0) -> list[tuple[str, str]]:
    """``the answer is a b`` -> `` c``: short prompts over the tokenizer's own words."""
    return [
        (f"the answer is {DIGITS[(i + offset) % 10]} {DIGITS[(2 * i + offset) % 10]}", f" {DIGITS[(i + offset) % 10]}")
        for i in range(n)
    ]


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("prompts")
    assert len(save_trajectory(root / "ckpts", text_tokenizer(), steps=(5, 20))) == 2
    write_prompts(root / "train.jsonl", digit_prompts(20))
    write_prompts(root / "transfer.jsonl", digit_prompts(6, offset=3))
    write_prompts(root / "facts.jsonl", [("plain text about", " digits"), ("the answer is 0 1", " 2")])
    return root


def family_text(**keys: str) -> str:
    head = "".join(f'{key} = "{value}"\n' for key, value in keys.items())
    return (
        head
        + '[study]\nfinetune_methods = ["full", "upper"]\n[[trajectories]]\nname = "gpt2-prompts"\n'
        + ('checkpoints = ["ckpts/step5", "ckpts/step20"]\n')
    )


def write_family(root: Path, name: str, body: str) -> Path:
    (root / name).write_text(body)
    return root / name


def test_a_family_fine_tuned_on_prompt_files(root: Path, tmp_path: Path) -> None:
    body = family_text(finetune="train.jsonl", heldout_prompts="transfer.jsonl", capability="facts.jsonl")
    file = write_family(root, "prompts.toml", body)
    family = load_family_file(file)
    study = family.study_config(TINY)
    assert study.primary_metrics == PROMPT_PRIMARY_METRICS  # the defaults name synthetic metrics
    recorded = check_family(family, study).as_dict()
    assert recorded["finetune"]["path"].endswith("train.jsonl") and len(recorded["heldout_prompts"]["sha256"]) == 16

    metrics = run_study(TINY, tmp_path / "out", family=family, progress=False).metrics
    units = metrics.groupby(["step", "method"]).size()
    assert set(units.index) == {(s, m) for s in (5, 20) for m in ("full", "upper")}
    names = [
        f"{kind}_prompt_{score}{suffix}"
        for kind in ("finetune", "heldout")
        for score in ("accuracy", "loss")
        for suffix in ("", "_base", FIXED_BUDGET)
    ]
    names += ["capability_loss", "capability_loss_change", "weight_drift_upper_share" + FIXED_BUDGET, "finetune_lr"]
    measured = metrics[metrics["metric"].isin(names)]
    assert set(measured["metric"]) == set(names) and measured["value"].map(math.isfinite).all()
    assert len(measured) == 4 * len(names)  # every unit measures every one
    accuracy = measured[measured["metric"].str.endswith("accuracy")]["value"]
    assert accuracy.between(0, 1).all()
    # the base's held-out score is the same whichever method then tunes it; pretraining quality is the base's
    # loss on the held-out prompts (the file names no quality set)
    table = measured.pivot_table(index=["step", "method"], columns="metric", values="value")
    assert table["heldout_prompt_loss_base"].groupby("step").nunique().eq(1).all()
    # both arms trained on the prompts: the validation split's answer loss fell
    assert (table["finetune_prompt_loss"] < table["finetune_prompt_loss_base"]).all()
    assert (table["finetune_prompt_loss" + FIXED_BUDGET] < table["finetune_prompt_loss_base"]).all()
    pretrain = metrics.groupby(["step", "method"])["pretrain_loss"].first()
    assert pretrain.to_numpy() == pytest.approx(table["heldout_prompt_loss_base"].to_numpy(), rel=1e-5)

    synthetic = {name for name, _ in mechanism_names(study)} - {"weight_drift_upper_share", "cka_drift_upper_share"}
    synthetic |= {*PROBE_METRICS, *(f"{p}_base" for p in PROBE_METRICS), "heldout_composite_accuracy"}
    synthetic |= {"heldout_composite_accuracy_base", "primitive_retention" + FIXED_BUDGET}
    absent = metrics[metrics["metric"].isin(synthetic)]
    assert set(absent["metric"]) == synthetic
    assert absent["value"].isna().all() and (absent["reason"] == PROMPT_TASKS).all()
    # no unit reached the target in the tiny budget: the stop-at-target arm's drift is NaN for that reason
    assert (metrics[metrics["metric"] == "reached_target"]["value"] == 0).all()
    drift = metrics[metrics["metric"] == "weight_drift_upper_share"]
    assert len(drift) == 4 and drift["value"].isna().all() and (drift["reason"] == MISSED_TARGET).all()
    # ... and so are the masks on the prompt task, which are then never learned
    masks = metrics[metrics["metric"].isin(PROMPT_MASKS)]
    assert len(masks) == 4 * len(PROMPT_MASKS) and masks["value"].isna().all()
    assert (masks["reason"] == MISSED_TARGET).all()


def test_prompt_fine_tuning_refusals_are_one_line(root: Path) -> None:
    write_prompts(root / "short.jsonl", digit_prompts(9))
    cases = {
        "missing.toml": (
            family_text(finetune="nowhere.jsonl", heldout_prompts="transfer.jsonl"),
            r"finetune prompt file 'nowhere\.jsonl' does not exist",
        ),
        "short.toml": (
            family_text(finetune="short.jsonl", heldout_prompts="transfer.jsonl"),
            r"finetune prompt file 'short\.jsonl' has 9 lines; it needs at least 10",
        ),
        "alone.toml": (family_text(finetune="train.jsonl"), r"finetune and heldout_prompts come together"),
        "heldout.toml": (
            'heldout = ["increment∘reverse"]\n' + family_text(finetune="train.jsonl", heldout_prompts="transfer.jsonl"),
            r"heldout names synthetic composites, and this family is fine-tuned on prompt files",
        ),
    }
    for name, (body, message) in cases.items():
        with pytest.raises(ConfigError, match=message) as info:
            load_family_file(write_family(root, name, body))
        assert "\n" not in str(info.value)
    # a [study] that declares its primary metrics keeps them
    declared = family_text(finetune="train.jsonl", heldout_prompts="transfer.jsonl").replace(
        "[study]\n", '[study]\nprimary_metrics = ["heldout_prompt_loss"]\n'
    )
    family = load_family_file(write_family(root, "declared.toml", declared))
    assert family.study_config(TINY).primary_metrics == ("heldout_prompt_loss",)


# A successor task ("the answer is 3" -> " 4") over 7 digits, so every validation line (every fifth) has its digit
# in training too; 50 lines leave 10 for validation, enough for the gate to tell the tuned model from chance.
SUCCESSOR = [(f"the answer is {i % 7}", f" {i % 7 + 1}") for i in range(50)]
# reachable in the budget; the permissive gate (no margin over random circuits: in a 4-head model they are never
# clearly worse) lets the masks of a model that learned the task pass, and still refuses a model at chance
REACHABLE = dataclasses.replace(
    TINY,
    lr_grid=(3e-2,),
    finetune=dataclasses.replace(TINY.finetune, target_accuracy=0.5, max_steps=60, warmup=0, replay_fraction=0.0),
    masks=dataclasses.replace(TINY.masks, seeds=(0, 1), steps=20, faithful_min_kept=0.5, faithful_margin=-0.5),
)


@pytest.fixture(scope="module")
def checkpoint(root: Path) -> Model:
    write_prompts(root / "successor.jsonl", SUCCESSOR)
    return loading.load_model(str(root / "ckpts" / "step20"))


# the base is at chance on the task (that is why its masks fail): fit_mask says so, rightly
@pytest.mark.filterwarnings("ignore:the model scores at chance:UserWarning")
def test_masks_on_the_prompt_task_of_a_fine_tune_that_reached_its_target(root: Path, checkpoint: Model) -> None:
    heldout = load_prompt_batch(str(root / "transfer.jsonl"), checkpoint.tokenizer, n_ctx=checkpoint.spec.n_ctx)
    rows = pd.DataFrame(
        measure_prompt_checkpoint(
            REACHABLE, checkpoint, {"step": 20}, finetune=str(root / "successor.jsonl"), heldout=heldout
        )
    )
    metrics = rows[rows["table"] == "metrics"].set_index("metric")
    assert metrics.loc["reached_target", "value"] == 1 and metrics.loc["finetune_steps", "value"] > 0
    masks = metrics.loc[list(PROMPT_MASKS)]
    assert (masks["subroutine"] == "").all()
    # the tuned model's masks pass (it learned the task); the base's fail (it is at chance on it)
    assert 0 < masks.loc["prompt_mask_density", "value"] <= 1
    assert masks.loc["prompt_mask_faithfulness", "value"] >= REACHABLE.masks.faithful_min_kept
    assert masks.loc["prompt_mask_rejection_rate", "value"] == pytest.approx(0.5)
    assert 0 <= masks.loc["prompt_mask_consistency", "value"] <= 1
    inherited = masks.loc["prompt_mask_inheritance_iou_excess"]
    assert math.isnan(inherited["value"]) and inherited["reason"] == NO_GATED_PAIR
    assert masks.drop(index="prompt_mask_inheritance_iou_excess")["reason"].isna().all()
    layers = rows[rows["table"] == "mask_layers"]
    assert set(zip(layers["model"], layers["subroutine"], strict=True)) == {("base", "prompt"), ("tuned", "prompt")}
    assert len(layers) == 2 * checkpoint.spec.n_layers * 2 and layers["density"].between(0, 1).all()


def test_a_model_s_prompt_masks_with_itself_are_inherited_whole(root: Path, checkpoint: Model) -> None:
    train, val = split_prompts(str(root / "successor.jsonl"), checkpoint)
    tuned = tune_checkpoint(checkpoint, REACHABLE, train, study_method("full"), val=val).target.model
    assert isinstance(tuned, Model)
    metrics, layers = prompt_masks(REACHABLE, tuned, tuned, train, val)
    values = {name: value for (name, _), value in metrics.items()}
    assert values["prompt_mask_rejection_rate"] == 0.0
    # the same fit on the same model is the same mask: its IoU is 1, above chance by 1 - E[IoU]
    density = values["prompt_mask_density"]
    assert 0 < density < 1 and values["prompt_mask_inheritance_iou_excess"] > 0
    frame = pd.DataFrame(layers).pivot_table(index=["layer", "group"], columns="model", values="density")
    torch.testing.assert_close(torch.tensor(frame["base"].to_numpy()), torch.tensor(frame["tuned"].to_numpy()))


def test_the_prompt_baseline_averages_real_tokens_only(checkpoint: Model, root: Path) -> None:
    write_prompts(root / "ragged.jsonl", [("the answer is", " 1"), ("the answer is 2 3 4", " 5")] * 5)
    train, _ = split_prompts(str(root / "ragged.jsonl"), checkpoint)
    assert not train.answer_mask[:, -1].all()  # the short lines are padded
    means = prompt_baseline(checkpoint, train).means
    long = train[train.answer_mask[:, -1]]
    short = train[~train.answer_mask[:, -1]]
    plain_long, plain_all = mean_baseline(checkpoint, long).means, mean_baseline(checkpoint, train).means
    n_short = int(short.answer_mask.nonzero()[:, 1].max()) + 1  # the short lines' length
    for name, value in means.items():
        # where only the long lines reach, their mean; where all do, the plain mean
        torch.testing.assert_close(value[n_short:], plain_long[name][n_short:], rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(value[:n_short], plain_all[name][:n_short], rtol=1e-5, atol=1e-6)
