"""A family fine-tuned on prompt files (issue 17): tiny GPT-2 checkpoints with a text tokenizer, a family file with
``finetune`` and ``heldout_prompts``; the prompt metrics are measured, the synthetic tasks' metrics are NaN with
the reason, and malformed files are refused in one line before any unit runs."""

import math
from pathlib import Path

import pytest

from modlens.errors import ConfigError
from modlens.names import FIXED_BUDGET
from modlens.study import PRESETS, run_study
from modlens.study.family_file import PROMPT_PRIMARY_METRICS, check_family, load_family_file
from modlens.study.phases import MISSED_TARGET, mechanism_names
from modlens.study.prompt_phases import PROMPT_TASKS
from modlens.study.reasoning import PROBE_METRICS
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
