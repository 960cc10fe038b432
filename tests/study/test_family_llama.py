"""End to end through the CLI on a second architecture: a Llama trajectory of three checkpoints saved here
(pretrained for a few steps on the synthetic tasks), with the seeded random-init control."""

import dataclasses
from pathlib import Path

import pandas as pd

from modlens.cli import main
from modlens.models.factory import tiny_model
from modlens.models.saving import save_model
from modlens.study import PRESETS
from modlens.tasks.operations import PRIMITIVES
from modlens.tasks.synthetic import SyntheticTask
from modlens.training.pretrain import PretrainConfig, pretrain

LAYOUT = PRESETS["tiny"].family.layout


def save_trajectory(root: Path, *, seed: int) -> list[Path]:
    init = tiny_model(
        "llama",
        tokenizer=LAYOUT.vocab.tokenizer(),
        n_layers=2,
        d_model=32,
        n_heads=4,
        d_mlp=64,
        n_ctx=max(32, LAYOUT.seq_len),
        seed=seed,
    )
    primitives = [SyntheticTask((p,), LAYOUT) for p in PRIMITIVES]
    saved: list[Path] = []

    def keep(step: int, model) -> None:
        saved.append(save_model(model, root / f"seed{seed}" / f"step{step}", layout=dataclasses.asdict(LAYOUT)))

    config = PretrainConfig(steps=20, checkpoints=(5, 10, 20), batch_size=16, seed=seed)
    pretrain(init, primitives, config, on_checkpoint=keep, progress=False)
    return saved


def test_a_llama_trajectory_runs_the_study_end_to_end(tmp_path, capsys) -> None:
    for seed in (0, 1):
        assert len(save_trajectory(tmp_path / "ckpts", seed=seed)) == 3
    body = "control = true\n" + "".join(
        f'[[trajectories]]\nname = "llama-tiny"\nseed = {seed}\n'
        f'checkpoints = ["ckpts/seed{seed}/step5", "ckpts/seed{seed}/step10", "ckpts/seed{seed}/step20"]\n'
        for seed in (0, 1)
    )
    (tmp_path / "llama.toml").write_text(body)
    out = tmp_path / "out"
    args = ["study", "--preset", "tiny", "--family", str(tmp_path / "llama.toml"), "--out", str(out), "--no-progress"]
    assert main([*args, "--executor", "local"]) == 0
    printed = capsys.readouterr().out
    assert "How much does pretraining quality affect the modularity of fine-tuned models?" in printed
    metrics = pd.read_csv(out / "metrics.csv")
    assert set(metrics["step"]) == {0, 5, 10, 20} and set(metrics["seed"]) == {0, 1}
    assert set(metrics["depth"]) == {2} and set(metrics["corpus"]) == {"llama-tiny"}
    assert "label_noise" not in metrics
    assert metrics[metrics["metric"] == "heldout_composite_accuracy"]["value"].notna().all()
    quality = pd.read_csv(out / "quality.csv")
    assert set(quality["task"]) == set(PRIMITIVES) and len(quality) == 2 * 4 * len(PRIMITIVES)
    # the pretrained checkpoints learned something the seeded random init did not
    losses = quality.groupby("step")["loss"].mean()
    assert losses[20] < losses[0]
    assert (out / "report.html").is_file()
    # a second run of the same command resumes: nothing is redone, the same tables come back
    assert main([*args, "--resume"]) == 0
    pd.testing.assert_frame_equal(pd.read_csv(out / "metrics.csv"), metrics)
