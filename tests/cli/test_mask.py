"""``modlens mask``: writes the mask, summary, density figure and config; bad input is one line, exit code 2."""

import json
from pathlib import Path

import pandas as pd
import pytest
import torch

from modlens.cli import main
from modlens.masks import load_mask
from modlens.models import save_model, tiny_model


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: one thread is fastest, and robust on a shared machine
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory, tokenizer) -> Path:
    model = tiny_model("gpt_neox", tokenizer=tokenizer, n_layers=2, d_model=32, n_heads=4, d_mlp=64, n_ctx=32)
    return save_model(model, tmp_path_factory.mktemp("models") / "tiny")


def test_mask_writes_mask_summary_figure_and_config(model_dir: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    args = ["mask", str(model_dir), "--task", "reverse", "--n-examples", "16", "--steps", "3", "--out", str(out)]
    with pytest.warns(UserWarning, match="nothing to localize"):  # an untrained model
        assert main(args) == 0
    mask = load_mask(out / "mask.json")
    assert mask.granularity == "component" and mask.shape["n_layers"] == 2
    summary = pd.read_csv(out / "summary.csv")
    assert summary["n_units"].item() == 2 * 4 + 2 * 64 and summary["size"].item() == mask.size
    density = pd.read_csv(out / "density.csv")
    assert set(density["group"]) == {"head", "neuron"} and len(density) == 4
    assert "plotly" in (out / "density.html").read_text()[:5000].lower()
    meta = json.loads((out / "config.json").read_text())
    assert meta["config"]["algorithm"] == "continuous_sparsification" and "provenance" in meta
    assert "kept" in capsys.readouterr().out


def test_weight_mask_is_written_as_safetensors(model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["mask", str(model_dir), "--task", "reverse", "--n-examples", "8", "--steps", "2",
            "--granularity", "weight", "--algorithm", "hard_concrete", "--out", str(out)]  # fmt: skip
    with pytest.warns(UserWarning, match="nothing to localize"):
        assert main(args) == 0
    mask = load_mask(out / "mask.safetensors")
    assert mask.granularity == "weight" and "blocks.1.mlp.out" in mask.units


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--steps", "0"], "steps must be a positive"),
        (["--sparsity", "1.5"], "sparsity must lie strictly between 0 and 1"),
        (["--n-examples", "0"], "--n-examples must be positive"),
    ],
)
def test_bad_input_is_one_line(model_dir: Path, tmp_path: Path, capsys, extra: list[str], message: str) -> None:
    args = ["mask", str(model_dir), "--task", "reverse", "--out", str(tmp_path / "o"), *extra]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
