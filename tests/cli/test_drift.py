"""``modlens drift``: outputs on disk, and one clear line for each kind of bad input."""

import json

import pandas as pd
import pytest

from modlens.cli import main
from modlens.models import save_model, tiny_model
from tests.drift.conftest import planted


@pytest.fixture(scope="module")
def pair_dirs(tmp_path_factory, tokenizer):
    root = tmp_path_factory.mktemp("drift_cli")
    base = tiny_model("gpt_neox", tokenizer=tokenizer, n_layers=2, d_model=32, n_heads=4, n_ctx=32)
    save_model(base, root / "base")
    save_model(planted(base, "gpt_neox", 1), root / "tuned")
    other = tiny_model("gpt_neox", tokenizer=tokenizer, n_layers=3, d_model=32, n_heads=4, n_ctx=32)
    save_model(other, root / "deeper")
    return root


def _drift(*args: object) -> int:
    return main(["drift", *map(str, args)])


def test_writes_tables_config_and_page(pair_dirs, tmp_path, capsys):
    out = tmp_path / "out"
    code = _drift(
        str(pair_dirs / "base"), str(pair_dirs / "tuned"), "--task", "reverse", "--n-examples", "8", "--out", str(out)
    )
    assert code == 0
    assert {p.name for p in out.iterdir()} == {
        "weights.csv",
        "activations.csv",
        "summary.csv",
        "config.json",
        "drift.html",
    }
    weights = pd.read_csv(out / "weights.csv")
    changed = weights[weights["rel_change"] > 1e-9]
    assert set(changed["matrix"]) == {"W_out"} and set(changed["layer"]) == {1}
    activations = pd.read_csv(out / "activations.csv")
    assert len(activations) == 2 * 3
    summary = pd.read_csv(out / "summary.csv")
    row = summary[(summary["source"] == "weights") & (summary["measure"] == "rel_change")].iloc[0]
    assert row["upper_share"] == pytest.approx(1.0) and row["mean_depth"] == pytest.approx(1.0)
    meta = json.loads((out / "config.json").read_text())
    assert meta["config"]["command"] == "drift" and meta["config"]["n_examples"] == 8
    assert "packages" in meta["provenance"]
    page = (out / "drift.html").read_text()
    assert page.count("<section>") == 4 and "Spectral split" in page
    assert "upper half" in capsys.readouterr().out


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    return err[0]


def test_incompatible_pair(pair_dirs, tmp_path, capsys):
    code = _drift(str(pair_dirs / "base"), str(pair_dirs / "deeper"), "--task", "reverse", "--out", str(tmp_path / "o"))
    assert code == 2
    assert "n_layers: base 2 vs tuned 3" in _error_line(capsys)


def test_empty_prompt_set(pair_dirs, tmp_path, capsys):
    prompts = tmp_path / "empty.jsonl"
    prompts.write_text("\n")
    code = _drift(
        str(pair_dirs / "base"), str(pair_dirs / "tuned"), "--prompts", str(prompts), "--out", str(tmp_path / "o")
    )
    assert code == 2
    assert "no rows" in _error_line(capsys)


def test_tokenizer_mismatch(pair_dirs, tmp_path, capsys):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(pair_dirs / "tuned")
    tok.add_tokens(["<extra>"])
    other = tmp_path / "tuned_other_tok"
    import shutil

    shutil.copytree(pair_dirs / "tuned", other)
    tok.save_pretrained(other)
    code = _drift(pair_dirs / "base", other, "--task", "reverse", "--out", tmp_path / "o")
    assert code == 2
    assert "tokenizers differ" in _error_line(capsys)
    assert not (tmp_path / "o").exists()


def test_unknown_measure(pair_dirs, tmp_path, capsys):
    code = _drift(
        str(pair_dirs / "base"),
        str(pair_dirs / "tuned"),
        "--task",
        "reverse",
        "--measures",
        "svcca",
        "--out",
        str(tmp_path / "o"),
    )
    assert code == 2
    assert "svcca" in _error_line(capsys)
