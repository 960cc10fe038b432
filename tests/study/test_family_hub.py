"""Hub checkpoints (id + revision) read from a local Hugging Face cache with HF_HUB_OFFLINE set: checked, planned
and studied without the network. The cache is laid out here as the hub client writes it (refs/REVISION -> commit,
snapshots/COMMIT/files); the CLI runs in a subprocess so the hub client reads the cache and offline switch afresh."""

import dataclasses
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd

from modlens.models.factory import tiny_model
from modlens.models.saving import save_model
from modlens.study import PRESETS

LAYOUT = PRESETS["tiny"].family.layout


def cache_revision(hub: Path, repo: str, revision: str, commit: str, *, seed: int) -> None:
    model = tiny_model(
        "gpt2",
        tokenizer=LAYOUT.vocab.tokenizer(),
        n_layers=1,
        d_model=32,
        n_heads=4,
        d_mlp=64,
        n_ctx=max(32, LAYOUT.seq_len),
        seed=seed,
    )
    root = hub / f"models--{repo.replace('/', '--')}"
    saved = save_model(model, root / "staging", layout=dataclasses.asdict(LAYOUT))
    (root / "refs").mkdir(parents=True, exist_ok=True)
    (root / "refs" / revision).write_text(commit)
    shutil.move(saved, root / "snapshots" / commit)


def modlens(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    code = "import sys; from modlens.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=600)


def test_hub_revisions_in_the_local_cache_run_offline(tmp_path) -> None:
    hub = tmp_path / "hub"
    cache_revision(hub, "someone/tiny-gpt2", "step10", "a" * 40, seed=0)
    cache_revision(hub, "someone/tiny-gpt2", "step20", "b" * 40, seed=1)
    file = tmp_path / "hub.toml"
    file.write_text(
        'control = true\n[[trajectories]]\nname = "gpt2-tiny"\ncheckpoints = [\n'
        '  { source = "someone/tiny-gpt2", revision = "step10" },\n'
        '  { source = "someone/tiny-gpt2", revision = "step20" },\n]\n'
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(hub), "MODLENS_PROGRESS": "0"}
    plan = modlens("study", "--preset", "tiny", "--family", str(file), "--plan", env=env)
    assert plan.returncode == 0, plan.stderr
    assert plan.stdout.startswith("3 units; probe: 5 fine-tuning steps of someone/tiny-gpt2@step10")
    out = tmp_path / "out"
    run = modlens("study", "--preset", "tiny", "--family", str(file), "--out", str(out), "--executor", "local", env=env)
    assert run.returncode == 0, run.stderr
    metrics = pd.read_csv(out / "metrics.csv")
    assert set(metrics["step"]) == {0, 10, 20}
    # a revision the cache does not hold is refused in one line, before anything runs
    file.write_text(file.read_text().replace('"step20"', '"step30"'))
    missing = modlens("study", "--preset", "tiny", "--family", str(file), "--out", str(tmp_path / "o2"), env=env)
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines()[-1].startswith("modlens study: error: someone/tiny-gpt2@step30: ")
    assert "HF_HUB_OFFLINE is set" in missing.stderr and not (tmp_path / "o2").exists()
