"""``modlens sweep``: the example file end to end, resume and replace, and one line + exit 2 for bad input."""

import socket
import warnings
from pathlib import Path

import pytest

from modlens import executors
from modlens.cli import main
from modlens.store import MANIFEST, Store
from tests.sweep.conftest import FAST, build_sweep_dir


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory, tokenizer) -> Path:
    return build_sweep_dir(tmp_path_factory.mktemp("sweep_cli"), tokenizer)


def _sweep(sweep_dir: Path, *args: str) -> int:
    overrides = [a for pair in FAST for a in ("--set", pair)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # random models score at chance; fit_mask says so
        return main(["sweep", str(sweep_dir / "sweep.toml"), *overrides, "--no-progress", *args])


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("modlens sweep: error: ") and "\n" not in err
    return err


def test_example_runs_resumes_and_refuses_another_sweep(sweep_dir, tmp_path, capsys):
    out = tmp_path / "out"
    assert _sweep(sweep_dir, "--out", str(out)) == 0
    assert "18 units" in capsys.readouterr().out
    frame = Store.read(out).frame()
    assert frame["unit"].nunique() == 18
    assert set(frame["analysis"]) == {"ablation", "mask", "weight_drift", "activation_drift"}
    manifest = (out / MANIFEST).read_text()

    assert _sweep(sweep_dir, "--out", str(out)) == 2  # same sweep, no --resume: finished work is not reused silently
    assert "--resume" in _one_line_error(capsys)
    assert _sweep(sweep_dir, "--out", str(out), "--resume") == 0
    assert Store.read(out).frame().equals(frame)

    assert _sweep(sweep_dir, "--out", str(out), "--set", "seeds=5") == 2  # a different sweep
    err = _one_line_error(capsys)
    assert str(out) in err and "--replace" in err and "another directory" in err
    assert (out / MANIFEST).read_text() == manifest and Store.read(out).frame().equals(frame)

    small = ["--set", "jobs.0.models=models/base", "--set", "jobs.0.tasks=reverse", "--set", "jobs.0.replacements=zero"]
    assert _sweep(sweep_dir, "--out", str(out), "--replace", *small, "--set", "jobs.1.seeds=0") == 0
    assert Store.read(out).frame()["unit"].nunique() == 1 + 4 + 2


def test_refuses_a_non_empty_directory_that_is_not_a_store(sweep_dir, tmp_path, capsys):
    (tmp_path / "mine.txt").write_text("keep me")
    assert _sweep(sweep_dir, "--out", str(tmp_path)) == 2
    assert "holds no modlens store" in _one_line_error(capsys)
    assert [p.name for p in tmp_path.iterdir()] == ["mine.txt"]


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (
            '[[jobs]]\nkind = "mask"\nmodels = ["models/base"]\ntasks = ["reverse"]\nstep = 3\n',
            "unknown config key 'step'",
        ),
        ('[[jobs]]\nkind = "mask"\nmodels = ["models/base"]\ntasks = ["reverse"]\nsteps = "3x"\n', "steps must be int"),
        ('[[jobs]]\nkind = "mask"\nmodels = ["models/base"]\ntasks = ["reverse∘nope"]\n', "unknown operation 'nope'"),
        ('[[jobs]]\nkind = "ablation"\nmodels = ["./models/none"]\ntasks = ["reverse"]\n', "'./models/none' does not"),
        ('[[jobs]]\nkind = "probe"\n', "unknown kind 'probe'; valid kinds: ablation, mask, drift"),
        (
            'outdir = "x"\n[[jobs]]\nkind = "mask"\n',
            "unknown key 'outdir'; valid keys: out, executor, device, dtype, jobs",
        ),
        ('[[jobs]]\nkind = "mask"\nmodels = ["models/base"]\ntasks = ["reverse"]\n', "no output directory"),
    ],
)
def test_bad_sweep_files_give_one_line_exit_2_and_create_nothing(sweep_dir, tmp_path, capsys, lines, expected):
    file = sweep_dir / f"bad-{abs(hash(lines))}.toml"
    file.write_text(lines)
    out = tmp_path / "out"
    args = ["sweep", str(file), "--no-progress"] + (["--out", str(out)] if expected != "no output directory" else [])
    assert main(args) == 2
    assert expected in _one_line_error(capsys)
    assert not out.exists()


def test_bad_executor_and_unreachable_scheduler_create_nothing(sweep_dir, tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    assert _sweep(sweep_dir, "--out", str(out), "--executor", "gpu") == 2
    assert "valid forms: local, processes, processes:N, dask://HOST:PORT" in _one_line_error(capsys)
    monkeypatch.setattr(executors, "DASK_TIMEOUT_S", 2.0)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert _sweep(sweep_dir, "--out", str(out), "--executor", f"dask://127.0.0.1:{port}") == 2
    assert f"Dask scheduler at dask://127.0.0.1:{port}" in _one_line_error(capsys)
    assert not out.exists()


def test_a_failing_unit_is_named_and_the_rest_are_kept(sweep_dir, tmp_path, capsys):
    # A synthetic task needs the model's vocabulary; a 3-op composite does not fit the 2-slot layout.
    args = ["--out", str(tmp_path / "out"), "--set", "jobs.0.tasks=reverse,increment∘reverse∘sort"]
    assert _sweep(sweep_dir, *args) == 2
    err = _one_line_error(capsys)
    assert "units failed" in err and "task=increment∘reverse∘sort" in err and "--resume" in err
    assert len(Store.read(tmp_path / "out").done()) == 18 - 4
