"""``modlens ablate``: writes the frame, config and heatmaps; bad input is one line and exit code 2."""

import json
from pathlib import Path

import pandas as pd
import pytest

from modlens.cli import main
from modlens.models import save_model, tiny_model


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory, tokenizer) -> Path:
    model = tiny_model("gpt_neox", tokenizer=tokenizer, n_layers=2, d_model=32, n_heads=4, n_ctx=32)
    return save_model(model, tmp_path_factory.mktemp("models") / "tiny")


def test_ablate_writes_csv_config_and_heatmap(model_dir: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    code = main(
        ["ablate", str(model_dir), "--task", "reverse", "--n-examples", "8", "--components", "all",
         "--replacement", "mean", "--out", str(out)]
    )  # fmt: skip
    assert code == 0
    frame = pd.read_csv(out / "ablation.csv")
    assert len(frame) == 8 + 2 + 2 + 2 * 128 and set(frame["kind"]) == {"head", "attn", "mlp", "neuron"}
    assert frame["change"].abs().max() > 0
    meta = json.loads((out / "config.json").read_text())
    assert meta["config"]["replacement"] == "mean" and meta["config"]["n_components"] == len(frame)
    assert "provenance" in meta
    for name in ("heatmap_heads.html", "heatmap_layers.html", "heatmap_neurons.html"):
        assert "plotly" in (out / name).read_text()[:5000].lower()
    assert "largest changes" in capsys.readouterr().out


def test_explicit_components(model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert main(["ablate", str(model_dir), "--task", "reverse", "--n-examples", "4",
                 "--components", "L0H1,L1.mlp", "--replacement", "zero", "--out", str(out)]) == 0  # fmt: skip
    assert list(pd.read_csv(out / "ablation.csv")["component"]) == ["L0H1", "L1.mlp"]
    assert not (out / "heatmap_neurons.html").exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--components", "L0X1"], "unknown component 'L0X1'"),
        (["--components", "L5H0"], "layers 0..1"),
        (["--components", "L0N999"], "neurons 0..127"),
        (["--components", "L0H7"], "heads 0..3"),
        (["--components", "blocks"], "unknown component group 'blocks'"),
        (["--n-examples", "0"], "--n-examples must be positive"),
    ],
)
def test_bad_input_is_one_line(model_dir: Path, tmp_path: Path, capsys, extra: list[str], message: str) -> None:
    args = ["ablate", str(model_dir), "--task", "reverse", "--out", str(tmp_path / "o"), *extra]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_empty_prompts_file(model_dir: Path, tmp_path: Path, capsys) -> None:
    prompts = tmp_path / "empty.jsonl"
    prompts.write_text("\n\n")
    assert main(["ablate", str(model_dir), "--prompts", str(prompts), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert "has no rows" in err and len(err.splitlines()) == 1


def test_prompts_file(model_dir: Path, tmp_path: Path) -> None:
    prompts = tmp_path / "prompts.jsonl"
    rows = [
        {"prompt": "<bos> reverse id 1 2 3 4 =", "answer": "4 3 2 1"},
        {"prompt": "<bos> sort id 3 1 =", "answer": "1 3"},
    ]
    prompts.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    out = tmp_path / "run"
    args = ["ablate", str(model_dir), "--prompts", str(prompts), "--components", "mlp", "--out", str(out)]
    assert main([*args, "--replacement", "resample"]) == 0
    frame = pd.read_csv(out / "ablation.csv")
    assert list(frame["component"]) == ["L0.mlp", "L1.mlp"] and (frame["replacement"] == "resample").all()
    assert json.loads((out / "config.json").read_text())["config"]["prompts"].endswith("prompts.jsonl")


def test_dtype_is_used_and_recorded(model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert main(["ablate", str(model_dir), "--task", "reverse", "--n-examples", "4", "--components", "L0H1,L1.mlp",
                 "--dtype", "bfloat16", "--out", str(out)]) == 0  # fmt: skip
    meta = json.loads((out / "config.json").read_text())
    assert meta["provenance"]["dtype"] == "torch.bfloat16"
    assert pd.read_csv(out / "ablation.csv")["ablated"].notna().all()
