"""The front door: models, tasks and component lists resolved one way for the CLI, sweeps and the study."""

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from modlens.components import Component
from modlens.errors import ModlensError, TaskError
from modlens.models import save_model, tiny_model
from modlens.resolve import (
    ModelRef,
    TaskRef,
    choice_list,
    component_list,
    load_model,
    model_ref,
    resolve_components,
    task_batch,
    task_ref,
)
from modlens.tasks import SyntheticTask, TaskLayout
from tests.test_components import SPEC  # 3 layers of 4 heads, d_mlp 128


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory, tokenizer) -> Path:
    layout = dataclasses.asdict(TaskLayout(n_digits=4))
    model = tiny_model("gpt_neox", tokenizer=tokenizer, n_layers=2, d_model=32, n_heads=4, n_ctx=32)
    return save_model(model, tmp_path_factory.mktemp("m") / "tiny", layout=layout)


def _one_line_error(call, match: str) -> str:
    with pytest.raises(ModlensError, match=match) as err:
        call()
    assert "\n" not in str(err.value)
    return str(err.value)


# -- models ---------------------------------------------------------------------------------------------------


def test_a_directory_resolves_to_its_absolute_path_and_loads(model_dir: Path, monkeypatch) -> None:
    monkeypatch.chdir(model_dir.parent)
    ref = model_ref("tiny")
    assert ref == ModelRef(str(model_dir.resolve()), None, "tiny")
    assert model_ref({"source": "tiny"}, base_dir=model_dir.parent) == ref
    model = load_model("tiny", dtype="bfloat16")
    assert model.spec.n_layers == 2 and model.dtype == torch.bfloat16


def test_a_hub_id_is_kept_with_its_revision() -> None:
    ref = model_ref({"source": "EleutherAI/pythia-70m", "revision": "step1000"})
    assert ref == ModelRef("EleutherAI/pythia-70m", "step1000", "EleutherAI/pythia-70m@step1000")


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ("./gone", "model path './gone' does not exist"),
        ("a/b/c", "model path 'a/b/c' does not exist"),
        (3, "a model is a path, a hub id, zoo:MEMBER@STEP"),
        ({"src": "x"}, "unknown model key 'src'; valid keys: revision, source"),
        ({"source": 1}, "a model table needs source"),
    ],
)
def test_bad_model_names_are_one_line(value, match: str, tmp_path: Path) -> None:
    _one_line_error(lambda: model_ref(value, base_dir=tmp_path), match)


def test_a_directory_without_a_model_is_refused(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    _one_line_error(lambda: model_ref("empty", base_dir=tmp_path), "holds no model: no config.json")
    _one_line_error(lambda: load_model(str(tmp_path / "missing")), "does not exist")


def _fake_family(cache: Path, key: str, member: str, steps: tuple[int, ...]) -> Path:
    for step in steps:
        path = cache / f"family-{key}" / member / f"step{step:06d}"
        path.mkdir(parents=True)
        (path / "config.json").write_text(json.dumps({}))
    return cache / f"family-{key}" / member


def test_family_members_resolve_in_the_cache(tmp_path: Path) -> None:
    member = _fake_family(tmp_path, "0123456789ab", "L1-seed0-noise0.00", (0, 20, 300))
    assert model_ref("zoo:L1-seed0-noise0.00@20", cache_dir=tmp_path).source == str(member / "step000020")
    assert model_ref("zoo:L1-seed0-noise0.00@step20", cache_dir=tmp_path).source == str(member / "step000020")
    assert model_ref("zoo:L1-seed0-noise0.00", revision="step300", cache_dir=tmp_path).source.endswith("000300")
    last = model_ref("zoo:L1-seed0-noise0.00", cache_dir=tmp_path)
    assert last == ModelRef(str(member / "step000300"), None, "zoo:L1-seed0-noise0.00")


def test_family_member_mistakes_are_one_line(tmp_path: Path) -> None:
    _fake_family(tmp_path, "0123456789ab", "L1-seed0-noise0.00", (0, 20))
    _one_line_error(lambda: model_ref("zoo:L9-seed0-noise0.00", cache_dir=tmp_path), "no family built in .* holds")
    _one_line_error(lambda: model_ref("zoo:L1-seed0-noise0.00@5", cache_dir=tmp_path), "steps: 0, 20")
    _one_line_error(lambda: model_ref("zoo:L1-seed0@x", cache_dir=tmp_path), "write zoo:MEMBER@STEP")
    _fake_family(tmp_path, "ba9876543210", "L1-seed0-noise0.00", (0,))
    _one_line_error(
        lambda: model_ref("zoo:L1-seed0-noise0.00", cache_dir=tmp_path), "several built families .*zoo:KEY/"
    )
    chosen = model_ref("zoo:ba9876543210/L1-seed0-noise0.00@0", cache_dir=tmp_path)
    assert "family-ba9876543210" in chosen.source


# -- tasks ----------------------------------------------------------------------------------------------------


def test_tasks_resolve_to_names_or_prompt_files(tmp_path: Path) -> None:
    assert task_ref("increment∘reverse") == TaskRef("increment∘reverse", None, "increment∘reverse")
    (tmp_path / "p.jsonl").write_text(json.dumps({"prompt": "1 2 =", "answer": "3"}) + "\n")
    ref = task_ref({"prompts": "p.jsonl"}, base_dir=tmp_path)
    assert ref == TaskRef(None, str((tmp_path / "p.jsonl").resolve()), "p.jsonl")


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ("reverse∘flip", "unknown operation 'flip'"),
        (7, "a task is a synthetic task name"),
        ({"prompts": "missing.jsonl"}, "prompts file 'missing.jsonl' does not exist"),
        ({"prompt": "x.jsonl"}, "a prompt-file task is"),
    ],
)
def test_bad_tasks_are_one_line(value, match: str, tmp_path: Path) -> None:
    _one_line_error(lambda: task_ref(value, base_dir=tmp_path), match)


def test_task_batch_draws_the_synthetic_split(model_dir: Path) -> None:
    model = load_model(str(model_dir))
    batch = task_batch(model, task_ref("reverse"), n=6, seed=3, split="train")
    expected = SyntheticTask.from_name("reverse", TaskLayout(n_digits=4)).sample(6, split="train", seed=3)
    assert torch.equal(batch.tokens, expected.tokens)
    with pytest.raises(TaskError, match="must be positive"):
        task_batch(model, task_ref("reverse"), n=0, seed=0)


# -- components -----------------------------------------------------------------------------------------------


def test_component_lists_have_one_grammar() -> None:
    assert component_list("heads") == ("heads",)
    assert component_list("L0H1, L1.mlp,") == ("L0H1", "L1.mlp")
    assert component_list(["L0H1", "L1N7"]) == ("L0H1", "L1N7")
    assert resolve_components(SPEC, "L0H1,L1.mlp") == [Component(0, "head", 1), Component(1, "mlp")]
    assert resolve_components(SPEC, ("mlp",)) == [Component(layer, "mlp") for layer in range(3)]
    assert len(resolve_components(SPEC, "heads")) == 3 * 4


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ("", "the component list is empty"),
        ("blocks", "unknown component group 'blocks'"),
        ("L0X1", "unknown component 'L0X1'"),
        (["L0H1", "heads"], "unknown component 'heads'"),
    ],
)
def test_bad_component_lists_are_one_line(value, match: str) -> None:
    _one_line_error(lambda: component_list(value), match)


def test_name_lists_are_checked_against_their_choices() -> None:
    assert choice_list("--measures", "linear_cka, cosine", ("linear_cka", "cosine", "rel_change")) == (
        "linear_cka",
        "cosine",
    )
    _one_line_error(lambda: choice_list("--measures", "svcca", ("cosine",)), "unknown --measures entry 'svcca'")
    _one_line_error(lambda: choice_list("replacements", [], ("zero", "mean")), "replacements must list at least one of")


def test_components_are_checked_against_the_model() -> None:
    _one_line_error(lambda: resolve_components(SPEC, "L5H0"), "layers 0..2")
    _one_line_error(lambda: resolve_components(SPEC, "L0H7"), "heads 0..3")


def test_the_cli_loads_a_family_member_by_name(model_dir: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    from modlens.cli import main
    from modlens.models import load_model

    member = tmp_path / "cache" / "family-0123456789ab" / "L2-seed0-noise0.00"
    save_model(load_model(model_dir), member / "step000040", layout=dataclasses.asdict(TaskLayout(n_digits=4)))
    monkeypatch.setenv("MODLENS_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "out"
    args = ["ablate", "zoo:L2-seed0-noise0.00@40", "--task", "reverse", "--n-examples", "4", "--out", str(out)]
    assert main([*args, "--components", "L0H1", "--no-progress"]) == 0
    assert json.loads((out / "config.json").read_text())["config"]["model"] == "zoo:L2-seed0-noise0.00@40"
    assert main([*args[:1], "zoo:L2-seed0-noise0.00@7", *args[2:], "--replace"]) == 2
    assert "no checkpoint at step 7; steps: 40" in capsys.readouterr().err
