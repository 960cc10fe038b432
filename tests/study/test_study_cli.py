"""End to end: the tiny preset through the CLI, resume after a real kill, and executor equivalence."""

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from modlens.cli import main
from modlens.study import PRESETS, plan_checkpoints, plan_pretraining, run_study
from modlens.study.phases import mechanism_names

# The tiny preset's pretraining units are 2 (seeds) and its checkpoint units 4 (2 seeds x steps 0, 20).
N_PRETRAIN, N_CHECKPOINT = 2, 4


def records(out: Path) -> dict[str, dict]:
    return {json.loads(p.read_text())["key"]: json.loads(p.read_text()) for p in (out / "records").glob("*.json")}


def test_tiny_study_through_the_cli(tmp_path, capsys) -> None:
    out = tmp_path / "study"
    assert main(["study", "--preset", "tiny", "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "How much does pretraining quality affect the modularity of fine-tuned models?" in printed
    assert "underpowered" in printed
    recs = records(out)
    assert len(recs) == N_PRETRAIN + N_CHECKPOINT
    assert all("provenance" in r["meta"] or "packages" in json.dumps(r["meta"]) for r in recs.values())
    metrics = pd.read_csv(out / "metrics.csv")
    behaviour = {
        "heldout_composite_accuracy",
        "heldout_composite_accuracy_fixed_budget",
        "primitive_accuracy_after",
        "finetune_steps",
        "reached_target",
        "finetune_lr",
        "weight_drift_upper_share_fixed_budget",
    }
    mechanisms = {name for name, _ in mechanism_names(PRESETS["tiny"])}
    assert {"reuse_specificity", "structural_compositionality", "mask_rejection_rate"} <= mechanisms
    assert behaviour | mechanisms <= set(metrics["metric"])
    assert not {"cka_drift_mean_depth", "weight_drift_mean_depth", "mask_iou"} & set(metrics["metric"])
    assert set(metrics["step"]) == {0, 20} and set(metrics["seed"]) == {0, 1}
    # 20 pretraining steps and 10 fine-tuning steps reach no target: every unit is counted as missing it,
    # and its mechanistic metrics are recorded as missing (never as zero)
    reached = metrics[metrics["metric"] == "reached_target"]
    assert len(reached) == N_CHECKPOINT and (reached["value"] == 0).all()
    assert metrics[metrics["metric"].isin(mechanisms)]["value"].isna().all()
    assert metrics[metrics["metric"].isin(behaviour)]["value"].notna().all()
    # the random-init control and the pretrained checkpoint share nothing but their initialisation
    losses = metrics.groupby("step")["pretrain_loss"].mean()
    assert losses[20] < losses[0]
    report = (out / "report.html").read_text()
    assert "How much does pretraining quality affect the modularity of fine-tuned models?" in report
    assert report.count("0 of 2") == 2  # fine-tunes that reached the target, counted per level in the report
    assert report.count("<div") > 3
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["kind"] == "study" and manifest["config"]["family"]["seeds"] == [0, 1]
    # rerunning without --resume refuses; with --resume it reuses every record
    assert main(["study", "--preset", "tiny", "--out", str(out), "--no-progress"]) == 2
    assert "--resume" in capsys.readouterr().err
    stamps = {p.name: p.stat().st_mtime_ns for p in (out / "records").glob("*.json")}
    assert main(["study", "--preset", "tiny", "--out", str(out), "--resume", "--no-progress"]) == 0
    assert {p.name: p.stat().st_mtime_ns for p in (out / "records").glob("*.json")} == stamps


def test_a_killed_run_resumes_to_the_same_results(tmp_path) -> None:
    reference = tmp_path / "reference"
    run_study(PRESETS["tiny"], reference, progress=False)
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "modlens.cli", "study", "--preset", "tiny", "--out", str(out), "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and len(list((out / "records").glob("*.json"))) < N_PRETRAIN + 1:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert len(list((out / "records").glob("*.json"))) < N_PRETRAIN + N_CHECKPOINT, "finished before the kill"
    resumed = run_study(PRESETS["tiny"], out, resume=True, progress=False)
    expected = run_study(PRESETS["tiny"], reference, resume=True, progress=False)
    pd.testing.assert_frame_equal(_canonical(resumed.metrics), _canonical(expected.metrics))
    pd.testing.assert_frame_equal(_canonical(resumed.quality), _canonical(expected.quality))


def test_resume_pretrains_again_a_member_whose_models_are_gone(tmp_path) -> None:
    out = tmp_path / "study"
    expected = run_study(PRESETS["tiny"], out, progress=False)
    member = next(p for p in (out / "models").iterdir() if not p.name.startswith("."))  # not a member's lock
    shutil.rmtree(member)
    for path in (out / "records").glob(f"finetune_{member.name}_*.json"):
        path.unlink()  # its checkpoint units must load the models again
    resumed = run_study(PRESETS["tiny"], out, resume=True, progress=False)
    assert member.is_dir()
    pd.testing.assert_frame_equal(_canonical(resumed.metrics), _canonical(expected.metrics))
    pd.testing.assert_frame_equal(_canonical(resumed.quality), _canonical(expected.quality))


def test_resume_leaves_out_a_gone_member_that_no_unit_still_needs(tmp_path) -> None:
    out = tmp_path / "study"
    expected = run_study(PRESETS["tiny"], out, progress=False)
    finished, needed = sorted(p for p in (out / "models").iterdir() if not p.name.startswith("."))[:2]
    for member in (finished, needed):
        shutil.rmtree(member)
    for path in (out / "records").glob(f"finetune_{needed.name}_*.json"):
        path.unlink()
    stamps = {p.name: p.stat().st_mtime_ns for p in (out / "records").glob(f"*{finished.name}*.json")}
    resumed = run_study(PRESETS["tiny"], out, resume=True, progress=False)
    assert needed.is_dir() and not finished.exists()  # every unit of `finished` is in the store already
    assert {p.name: p.stat().st_mtime_ns for p in (out / "records").glob(f"*{finished.name}*.json")} == stamps
    pd.testing.assert_frame_equal(_canonical(resumed.metrics), _canonical(expected.metrics))
    pd.testing.assert_frame_equal(_canonical(resumed.quality), _canonical(expected.quality))


@pytest.mark.slow
def test_process_pool_gives_identical_results(tmp_path) -> None:
    local = run_study(PRESETS["tiny"], tmp_path / "local", progress=False)
    pool = run_study(PRESETS["tiny"], tmp_path / "pool", executor="processes:2", progress=False)
    pd.testing.assert_frame_equal(_canonical(pool.metrics), _canonical(local.metrics))


def test_plans_cover_every_member_and_checkpoint() -> None:
    config = PRESETS["large"]
    root = Path("/nonexistent")
    family = config.family
    runs = len(family.seeds) * len(family.label_noise) * len(family.composite_fraction)
    n_members = len(family.depths) * runs
    # every member, and one depth-1 proxy-tuning expert per (seed, noise, corpus)
    assert len(plan_pretraining(config, root)) == n_members + runs
    units = plan_checkpoints(config, root)
    assert len(units) == n_members * len(family.checkpoints) * len(config.finetune_methods)
    assert len({u.key for u in units}) == len(units)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "seedz=1"], "unknown config key 'seedz'; valid keys:"),
        (["--set", "masks.steps=many"], "masks.steps must be int"),
        (["--set", "family.checkpoints=10,20"], "step 0"),
        (["--set", "family.layers=2"], "unknown config key 'family.layers'; valid keys: family.architecture"),
        (["--executor", "dask://127.0.0.1:1"], "127.0.0.1:1"),
        (["--executor", "threads"], "executor"),
    ],
)
def test_bad_input_is_one_line(args: list[str], message: str, tmp_path, capsys) -> None:
    code = main(["study", "--preset", "tiny", "--out", str(tmp_path / "o"), "--no-progress", *args])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1


def test_a_different_study_in_the_output_directory_is_refused(tmp_path, capsys) -> None:
    out = tmp_path / "o"
    run_study(PRESETS["tiny"], out, progress=False)
    before = sorted(p.name for p in (out / "records").iterdir())
    assert main(["study", "--preset", "tiny", "--set", "family.seeds=5", "--out", str(out), "--no-progress"]) == 2
    assert "different study" in capsys.readouterr().err
    assert sorted(p.name for p in (out / "records").iterdir()) == before


def _canonical(frame: pd.DataFrame) -> pd.DataFrame:
    columns = [c for c in frame.columns if c != "unit"]
    keys = [c for c in ("unit", "metric", "subroutine", "task", "step", "seed") if c in frame.columns]
    return frame.sort_values(keys).reset_index(drop=True)[columns]
