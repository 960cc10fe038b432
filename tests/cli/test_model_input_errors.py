"""Model and task input mistakes, through every command that loads a model: one line, exit 2, no output left."""

import json
from pathlib import Path

import pytest
import torch

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
        code = main([*cmd, "--no-progress"])  # the error line alone on stderr, not after a bar cut short
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


# Damaged checkpoints: every command that loads a model, patching included, refuses them in one line.


@pytest.fixture(scope="module")
def pairs_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    file = tmp_path_factory.mktemp("prompts") / "pairs.jsonl"
    pair = {
        "prompt": "<bos> sort id 3 1 =",
        "answer": " 1",
        "corrupt_prompt": "<bos> sort id 4 2 =",
        "wrong_answer": " 2",
    }
    file.write_text(json.dumps(pair) + "\n")
    return file


def all_commands(model: str, out: Path, pairs: Path) -> list[list[str]]:
    return [
        *commands(model, out, "--prompts", str(pairs)),
        ["patch", model, "--prompts", str(pairs), "--out", str(out)],
    ]


def damaged_copy(model_dir: Path, tmp_path: Path, damage) -> str:
    import shutil

    copy = tmp_path / "damaged"
    shutil.copytree(model_dir, copy)
    damage(copy)
    return str(copy)


def test_truncated_weights(model_dir: Path, pairs_file: Path, tmp_path: Path, capsys) -> None:
    def truncate(path: Path) -> None:
        weights = path / "model.safetensors"
        weights.write_bytes(weights.read_bytes()[:1000])

    out = tmp_path / "out"
    model = damaged_copy(model_dir, tmp_path, truncate)
    run_all(all_commands(model, out, pairs_file), out, "are truncated or corrupt", capsys)


def _edit_weights(path: Path, edit) -> None:
    from safetensors.torch import load_file, save_file

    weights = load_file(path / "model.safetensors")
    edit(weights)
    save_file(weights, path / "model.safetensors", metadata={"format": "pt"})


def test_nan_weight(model_dir: Path, pairs_file: Path, tmp_path: Path, capsys) -> None:
    def poison(weights) -> None:
        name = next(k for k in weights if k.endswith("mlp.c_fc.weight"))
        weights[name][0, 0] = float("nan")

    out = tmp_path / "out"
    model = damaged_copy(model_dir, tmp_path, lambda p: _edit_weights(p, poison))
    run_all(all_commands(model, out, pairs_file), out, "mlp.c_fc.weight of", capsys)


def test_infinite_clean_logits(model_dir: Path, pairs_file: Path, tmp_path: Path, capsys) -> None:
    def overflow(weights) -> None:  # finite weights whose forward overflows
        for name in weights:
            if name.endswith("wte.weight"):
                weights[name].fill_(3e38)

    out = tmp_path / "out"
    model = damaged_copy(model_dir, tmp_path, lambda p: _edit_weights(p, overflow))
    run_all(all_commands(model, out, pairs_file), out, "hold NaN or infinity", capsys)


def test_corrupt_tokenizer(model_dir: Path, pairs_file: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    model = damaged_copy(model_dir, tmp_path, lambda p: (p / "tokenizer.json").write_text("{not json"))
    run_all(all_commands(model, out, pairs_file), out, "cannot read the tokenizer in", capsys)


def test_missing_tokenizer(model_dir: Path, pairs_file: Path, tmp_path: Path, capsys) -> None:
    def strip(path: Path) -> None:
        for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
            (path / name).unlink(missing_ok=True)

    out = tmp_path / "out"
    model = damaged_copy(model_dir, tmp_path, strip)
    run_all(all_commands(model, out, pairs_file), out, "this model has no tokenizer", capsys)


@pytest.mark.parametrize(("device", "message"), [("cuda:7", "cuda:7"), ("tpu", "unknown device 'tpu'")])
def test_device_that_does_not_exist(model_dir, pairs_file, tmp_path, capsys, device, message) -> None:
    if device.startswith("cuda") and torch.cuda.device_count() > 7:
        pytest.skip("this machine has a cuda:7")
    out = tmp_path / "out"
    cmds = [[*c, "--device", device] for c in all_commands(str(model_dir), out, pairs_file)]
    run_all(cmds, out, message, capsys)
