"""Every example in README.md and docs/*.md runs as written: each fenced ``bash`` line and each ``python`` block.

The blocks run in document order (README first, then docs/ by name) in one workspace that holds a copy of
``examples/`` and ``benchmarks/data/`` and its own family cache, so the README tour's ``modlens zoo`` builds the
family that later examples name (``zoo:MEMBER@STEP``). Python blocks of one document share a namespace, like a
notebook's cells. What runs differently here, on purpose, is listed in ``STAND_INS``: a real model's placeholder
names get tiny saved models, and ``./run study`` (the quick preset, ~10 minutes) runs the ``tiny`` preset.
``./run test`` is this suite itself (``.ci/run`` is checked to run it instead). Other fences (``text``, ``toml``,
``json``) are not commands; TOML and JSON fences are parsed, so a broken example fails too.
"""

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

from modlens.cli import main

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)


@dataclass(frozen=True)
class Block:
    document: Path
    line: int
    language: str
    code: str

    @property
    def id(self) -> str:
        return f"{self.document.name}:{self.line}"


def blocks() -> list[Block]:
    found = []
    for document in DOCUMENTS:
        text = document.read_text(encoding="utf-8")
        for match in FENCE.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            found.append(Block(document, line, match.group(1), match.group(2)))
    return found


def shell_lines(code: str) -> list[str]:
    """Commands of a bash block: comments dropped, backslash continuations joined."""
    joined = re.sub(r"\\\n\s*", " ", code)
    lines = [shlex.split(line, comments=True) for line in joined.splitlines()]
    return [shlex.join(words) for words in lines if words]


BLOCKS = blocks()


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory, tokenizer) -> dict[str, Path]:
    """The working directory the examples run in, and the tiny models that stand in for real ones."""
    from modlens.models import save_model, tiny_model

    root = tmp_path_factory.mktemp("docs")
    shutil.copytree(ROOT / "examples", root / "examples", ignore=shutil.ignore_patterns("results", "*.ipynb"))
    shutil.copytree(ROOT / "benchmarks" / "data", root / "benchmarks" / "data")
    models = root / "stand-ins"
    english = text_tokenizer(ROOT / "benchmarks" / "data" / "ioi_pairs.jsonl")
    llama = tiny_model("llama", tokenizer=english, n_layers=2, d_model=32, n_heads=4, n_ctx=64, n_kv_heads=2)
    return {
        "root": root,
        "cache": root / "cache",
        "MODEL": save_model(tiny_model("gpt2", tokenizer=tokenizer, n_layers=2, d_model=32, n_heads=4), models / "m"),
        "REAL": save_model(llama, models / "real"),
    }


def text_tokenizer(jsonl: Path):
    """A byte-level BPE tokenizer learned on a prompt file's text: real-model examples need English prompts."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast

    rows = [json.loads(line) for line in jsonl.read_text(encoding="utf-8").splitlines() if line.strip()]
    text = [value for row in rows for value in row.values() if isinstance(value, str)]
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(text, vocab_size=400, min_frequency=1, special_tokens=["<pad>", "<bos>", "<eos>"])
    return PreTrainedTokenizerFast(tokenizer_object=bpe, pad_token="<pad>", bos_token="<bos>", eos_token="<eos>")


STAND_INS = {
    # a placeholder for the reader's model, and the offline SmolLM2 directory: tiny saved models
    "MODEL": "MODEL",
    "/tmp/smollm2": "REAL",
}


def run_shell(command: str, space: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    words = shlex.split(command)
    words = [str(space[STAND_INS[w]]) if w in STAND_INS else w for w in words]
    if words[:2] == ["./run", "test"]:
        assert "./run test" in (ROOT / ".ci" / "run").read_text(), "CI must run the README's test command"
        return
    if words[:2] == ["./run", "study"]:
        words = ["modlens", "study", *words[2:], "--preset", "tiny"]
    if words[:2] == ["./run", "modlens"]:
        words = words[1:]
    if words[0] == "modlens":
        code = main(words[1:])
        assert code == 0, f"{command}\n{capsys.readouterr().err}"
    elif words[0] in ("python", ".venv/bin/python"):
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        done = subprocess.run([sys.executable, *words[1:]], capture_output=True, text=True, env=env, timeout=900)
        assert done.returncode == 0, f"{command}\n{done.stderr[-3000:]}"
    else:
        pytest.fail(f"{command!r}: the docs harness does not know how to run {words[0]!r}; add it to run_shell")


NAMESPACES: dict[Path, dict[str, object]] = {}


@pytest.mark.slow
@pytest.mark.parametrize("block", BLOCKS, ids=lambda b: b.id)
def test_example_runs(block: Block, workspace, monkeypatch, capsys) -> None:
    monkeypatch.chdir(workspace["root"])
    monkeypatch.setenv("MODLENS_CACHE", str(workspace["cache"]))
    monkeypatch.setenv("MODLENS_PROGRESS", "0")
    if block.language in ("bash", "sh"):
        for command in shell_lines(block.code):
            run_shell(command, workspace, capsys)
    elif block.language == "python":
        namespace = NAMESPACES.setdefault(block.document, {"__name__": "__docs__"})
        exec(compile(block.code, f"{block.document.name}:{block.line}", "exec"), namespace)
    elif block.language == "toml":
        tomllib.loads(block.code)
    elif block.language == "json":  # one object, or JSON lines
        try:
            json.loads(block.code)
        except json.JSONDecodeError:
            [json.loads(line) for line in block.code.splitlines() if line.strip()]
    else:
        assert block.language == "text", f"{block.id}: fence {block.language!r}; use bash, python, toml, json or text"


def test_the_harness_reads_examples() -> None:
    languages = {b.language for b in BLOCKS}
    assert {"bash", "python"} <= languages
    assert sum(len(shell_lines(b.code)) for b in BLOCKS if b.language == "bash") >= 8
