"""``modlens patch``: writes the frame, config and heatmaps; bad input is one line and exit code 2."""

import json
from pathlib import Path

import pandas as pd
import pytest

from modlens.cli import main
from modlens.models import save_model, tiny_model

PAIRS = [
    ("<bos> reverse id 1 2 3 4 =", " 4", "<bos> reverse id 5 6 7 8 =", " 8"),
    ("<bos> reverse id 3 1 4 1 =", " 1", "<bos> reverse id 2 7 1 8 =", " 8"),
    ("<bos> sort id 9 2 6 5 =", " 2", "<bos> sort id 3 5 8 9 =", " 3"),
]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory, tokenizer) -> Path:
    model = tiny_model("llama", tokenizer=tokenizer, n_layers=2, d_model=32, n_heads=4, n_kv_heads=2, n_ctx=32)
    return save_model(model, tmp_path_factory.mktemp("models") / "tiny")


@pytest.fixture()
def prompts(tmp_path: Path) -> Path:
    file = tmp_path / "pairs.jsonl"
    keys = ("prompt", "answer", "corrupt_prompt", "wrong_answer")
    file.write_text("\n".join(json.dumps(dict(zip(keys, row, strict=True))) for row in PAIRS))
    return file


def test_patch_heads_both_directions_with_attribution(model_dir, prompts, tmp_path, capsys) -> None:
    out = tmp_path / "run"
    code = main(["patch", str(model_dir), "--prompts", str(prompts), "--direction", "both", "--attribution",
                 "--no-progress", "--out", str(out)])  # fmt: skip
    assert code == 0
    frame = pd.read_csv(out / "patching.csv")
    assert len(frame) == 2 * 8 and set(frame["direction"]) == {"noising", "denoising"}
    assert (frame.loc[frame["direction"] == "noising", "unpatched"] - 1).abs().max() < 1e-4
    assert frame.loc[frame["direction"] == "denoising", "unpatched"].abs().max() < 1e-4
    assert len(pd.read_csv(out / "attribution.csv")) == len(frame)
    config = json.loads((out / "config.json").read_text())["config"]
    assert set(config["attribution_agreement"]) == {"noising", "denoising"}
    assert config["prompt_tokens"][0] == "<bos>" and config["tokenizer_prepends_bos"] is False
    for name in ("heatmap_noising_head.html", "heatmap_denoising_head.html"):
        assert "plotly" in (out / name).read_text()[:5000].lower()
    printed = capsys.readouterr().out
    assert "largest effects" in printed and "Spearman" in printed


def test_patch_residual_stream_by_position(model_dir, prompts, tmp_path) -> None:
    out = tmp_path / "run"
    assert main(["patch", str(model_dir), "--prompts", str(prompts), "--components", "resid",
                 "--positions", "each", "--out", str(out)]) == 0  # fmt: skip
    frame = pd.read_csv(out / "patching.csv")
    assert len(frame) == 2 * 8 and frame["position"].tolist()[:8] == list(range(8))
    assert (out / "heatmap_denoising_resid.html").is_file()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--positions", "1,x"], "--positions must be 'each' or comma-separated integers"),
        (["--positions", "9"], "positions [9] are outside the prompts"),
        (["--components", "L7H0"], "layer 7 out of range"),
    ],
)
def test_bad_input_is_one_line(model_dir, prompts, tmp_path, capsys, extra, message) -> None:
    out = tmp_path / "run"
    assert main(["patch", str(model_dir), "--prompts", str(prompts), "--out", str(out), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_prompts_without_counterfactuals_are_refused(model_dir, tmp_path, capsys) -> None:
    file = tmp_path / "plain.jsonl"
    file.write_text(json.dumps({"prompt": "<bos> sort id 1 2 =", "answer": " 1"}))
    assert main(["patch", str(model_dir), "--prompts", str(file), "--out", str(tmp_path / "run")]) == 2
    assert "example 1: patching needs corrupt_prompt and wrong_answer" in capsys.readouterr().err
