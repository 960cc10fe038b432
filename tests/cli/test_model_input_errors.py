"""Model and task input mistakes, through every command that loads a model: one line, exit 2, no output left."""

from pathlib import Path

import pytest

from modlens.cli import main
from modlens.models import save_model, tiny_model


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory, tokenizer) -> Path:
    model = tiny_model("gpt2", tokenizer=tokenizer, n_layers=1, d_model=32, n_heads=4, n_ctx=16)
    return save_model(model, tmp_path_factory.mktemp("models") / "tiny")


def commands(model: str, out: Path, *task: str) -> list[list[str]]:
    return [
        ["ablate", model, *task, "--components", "heads", "--out", str(out)],
        ["mask", model, *task, "--out", str(out)],
        ["drift", model, model, *task, "--out", str(out)],
    ]


def run_all(cmds: list[list[str]], out: Path, message: str, capsys) -> None:
    for cmd in cmds:
        code = main(cmd)
        err = capsys.readouterr().err
        assert code == 2, (cmd, err)
        assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err, (cmd, err)
        assert not out.exists() or not any(out.iterdir()), cmd


def test_missing_model_path(tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    run_all(commands(str(tmp_path / "nope" / "model"), out, "--task", "reverse"), out, "does not exist", capsys)


def test_directory_that_holds_no_model(tmp_path: Path, capsys) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "out"
    run_all(commands(str(empty), out, "--task", "reverse"), out, "holds no model", capsys)


def test_unknown_task_name(model_dir: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    run_all(commands(str(model_dir), out, "--task", "reverse∘flip"), out, "unknown operation 'flip'", capsys)


def test_malformed_jsonl_names_the_line(model_dir: Path, tmp_path: Path, capsys) -> None:
    prompts = tmp_path / "p.jsonl"
    prompts.write_text('{"prompt": "<bos> reverse id 1 2 3 4 =", "answer": "4 3 2 1"}\n{"prompt": oops}\n')
    out = tmp_path / "out"
    run_all(commands(str(model_dir), out, "--prompts", str(prompts)), out, "line 2: malformed JSON", capsys)


def test_prompt_longer_than_the_context(model_dir: Path, tmp_path: Path, capsys) -> None:
    prompts = tmp_path / "long.jsonl"
    prompts.write_text('{"prompt": "' + " ".join(["1"] * 20) + '", "answer": "2"}\n')
    out = tmp_path / "out"
    run_all(
        commands(str(model_dir), out, "--prompts", str(prompts)), out, "more than the model's context of 16", capsys
    )
