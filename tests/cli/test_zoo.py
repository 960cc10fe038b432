import pytest

from modlens.cli import main

TINY_SETTINGS = [
    "--set", "depths=1", "--set", "d_model=32", "--set", "d_mlp=64", "--set", "seeds=0",
    "--set", "label_noise=0.0,0.5", "--set", "steps=10", "--set", "checkpoints=0,10",
    "--set", "batch_size=8", "--set", "n_digits=4", "--set", "n_eval=16",
]  # fmt: skip


def test_zoo_prints_the_quality_table(tmp_path, capsys) -> None:
    code = main(["zoo", "--cache-dir", str(tmp_path), "--no-progress", *TINY_SETTINGS])
    out = capsys.readouterr().out
    assert code == 0
    assert "heldout_loss" in out and "answer_accuracy" in out
    lines = [line for line in out.splitlines() if line.strip().startswith("1 ")]
    assert len(lines) == 4  # 2 noise levels x 2 checkpoints


def test_environment_variable_sets_the_cache(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("MODLENS_CACHE", str(tmp_path / "envcache"))
    assert main(["zoo", "--no-progress", *TINY_SETTINGS]) == 0
    assert str(tmp_path / "envcache") in capsys.readouterr().out
    assert list((tmp_path / "envcache").glob("family-*"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "layers=3"], "unknown config key 'layers'; valid keys:"),
        (["--set", "steps=abc"], "steps must be int"),
        (["--set", "nokey"], "malformed override"),
        (["--config", "missing.toml"], "does not exist"),
        (["--set", "architecture=bert"], "architecture must be one of"),
    ],
)
def test_bad_input_gives_one_line_and_nonzero_exit(args: list[str], message: str, tmp_path, capsys) -> None:
    code = main(["zoo", "--cache-dir", str(tmp_path), "--no-progress", *args])
    err = capsys.readouterr().err
    assert code != 0
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_config_file_is_read(tmp_path, capsys) -> None:
    cfg = tmp_path / "family.toml"
    cfg.write_text(
        "depths = [1]\nd_model = 32\nd_mlp = 64\nseeds = [5]\nlabel_noise = [0.0]\nsteps = 4\n"
        "checkpoints = [0, 4]\nbatch_size = 4\nn_digits = 4\nn_eval = 8\n"
    )
    assert main(["zoo", "--cache-dir", str(tmp_path / "c"), "--no-progress", "--config", str(cfg)]) == 0
    assert list((tmp_path / "c").glob("family-*/L1-seed5-noise0.00/step000004"))


def test_malformed_toml_is_one_line(tmp_path, capsys) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text("depths = [1\n")
    assert main(["zoo", "--cache-dir", str(tmp_path), "--config", str(cfg)]) == 2
    assert "malformed TOML" in capsys.readouterr().err
