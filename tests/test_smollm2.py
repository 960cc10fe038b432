"""Opt-in: the README's SmolLM2 patching command on the real model (``MODLENS_SMOLLM2=DIR``, a directory made by
``../shared/tools/prep_smollm2.sh DIR .venv/bin/python``). Skipped without it; CI never needs it."""

import json
import os
from pathlib import Path

import pandas as pd
import pytest

from modlens.cli import main

pytestmark = [
    pytest.mark.smollm2,
    pytest.mark.skipif(not os.environ.get("MODLENS_SMOLLM2"), reason="set MODLENS_SMOLLM2 to a SmolLM2-135M directory"),
]


def test_readme_ioi_patching(tmp_path: Path) -> None:
    from cli.test_readme_commands import SECTIONS, readme_commands  # type: ignore[import-not-found]

    (command,) = readme_commands(SECTIONS[1])
    swap = {"/tmp/smollm2": os.environ["MODLENS_SMOLLM2"]}
    args = [swap.get(a, str(tmp_path / a) if a.startswith("runs/") else a) for a in command[1:]]
    assert main([*args, "--no-progress"]) == 0
    out = Path(args[args.index("--out") + 1])
    frame = pd.read_csv(out / "patching.csv")
    config = json.loads((out / "config.json").read_text())["config"]
    assert len(frame) == 270
    # the model does the task: the clean run prefers the indirect object, the corrupted run the subject
    assert config["logit_diff_clean"] > 1 and config["logit_diff_corrupted"] < -1
    assert frame["patched"].max() > 0.1  # some head restores a tenth of the clean behaviour on its own
    assert config["attribution_agreement"]["denoising"]["spearman"] > 0
