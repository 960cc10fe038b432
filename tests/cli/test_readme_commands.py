"""Every command in the README's patching and real-checkpoint sections runs (tiny models stand in for MODEL;
the SmolLM2 command runs when ``MODLENS_SMOLLM2`` names its directory, see ``tests/test_smollm2.py``)."""

import json
import re
import shlex
from pathlib import Path

import pytest

from modlens.cli import main
from modlens.models import save_model, tiny_model

README = Path(__file__).resolve().parents[2] / "README.md"
SECTIONS = ("## Activation patching", "## Real checkpoints")


def readme_blocks(section: str, language: str) -> list[str]:
    text = README.read_text(encoding="utf-8")
    start = text.index(section)
    body = text[start : text.find("\n## ", start + 1)]
    return re.findall(rf"```{language}\n(.*?)```", body, flags=re.S)


def readme_commands(section: str) -> list[list[str]]:
    blocks = readme_blocks(section, "bash")
    return [shlex.split(line) for block in blocks for line in block.splitlines() if line.startswith("modlens ")]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory, tokenizer) -> Path:
    model = tiny_model("gpt2", tokenizer=tokenizer, n_layers=2, d_model=32, n_heads=4, n_ctx=32)
    return save_model(model, tmp_path_factory.mktemp("models") / "tiny")


@pytest.fixture(scope="module")
def pairs_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rows = [
        ("<bos> reverse id 1 2 3 4 =", " 4", "<bos> reverse id 5 6 7 8 =", " 8"),
        ("<bos> sort id 9 2 6 5 =", " 2", "<bos> sort id 3 5 8 9 =", " 3"),
    ]
    keys = ("prompt", "answer", "corrupt_prompt", "wrong_answer")
    file = tmp_path_factory.mktemp("prompts") / "pairs.jsonl"
    file.write_text("\n".join(json.dumps(dict(zip(keys, r, strict=True))) for r in rows))
    return file


def test_the_sections_show_commands() -> None:
    assert len(readme_commands(SECTIONS[0])) == 3 and len(readme_commands(SECTIONS[1])) == 1


@pytest.mark.parametrize("command", readme_commands(SECTIONS[0]), ids=lambda c: " ".join(c[2:6]))
def test_patching_commands_run(command, model_dir, pairs_file, tmp_path, capsys) -> None:
    swap = {"MODEL": str(model_dir), "pairs.jsonl": str(pairs_file)}
    args = [swap.get(a, str(tmp_path / a) if a.startswith("runs/") else a) for a in command[1:]]
    assert main(args) == 0, capsys.readouterr().err
    out = Path(args[args.index("--out") + 1])
    assert (out / "patching.csv").is_file() and (out / "config.json").is_file()


def test_patching_python_block_runs(model_dir, pairs_file, tmp_path, monkeypatch) -> None:
    from modlens.models import load_model

    (block,) = readme_blocks(SECTIONS[0], "python")
    (tmp_path / "pairs.jsonl").write_text(pairs_file.read_text())
    monkeypatch.chdir(tmp_path)
    namespace = {"model": load_model(model_dir)}
    exec(compile(block, "README.md", "exec"), namespace)
    assert len(namespace["exact"]) == 8 and len(namespace["resid"]) == 2 * (namespace["pairs"].n_pos - 1)
