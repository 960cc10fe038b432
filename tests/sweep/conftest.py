"""Fixtures for sweep tests: a directory holding the test sweep file beside two tiny saved models."""

import dataclasses
import shutil
from pathlib import Path

import pytest

from modlens.models import save_model, tiny_model
from modlens.tasks import TaskLayout
from tests.drift.conftest import planted

EXAMPLE = Path(__file__).resolve().parent / "sweep.toml"

# Small enough that the example's whole grid runs in seconds on 2 cores.
FAST = ("n_examples=8", "steps=3")


def build_sweep_dir(root: Path, tokenizer) -> Path:
    """``root`` with ``sweep.toml`` (this folder's) and ``models/base``, ``models/tuned`` (layer 1 MLP perturbed)."""
    layout = dataclasses.asdict(TaskLayout(n_digits=4))
    base = tiny_model("gpt_neox", tokenizer=tokenizer, n_layers=2, d_model=32, n_heads=4, n_ctx=32)
    save_model(base, root / "models" / "base", layout=layout)
    save_model(planted(base, "gpt_neox", 1), root / "models" / "tuned", layout=layout)
    shutil.copy(EXAMPLE, root / "sweep.toml")
    return root


@pytest.fixture(scope="session")
def sweep_dir(tmp_path_factory: pytest.TempPathFactory, tokenizer) -> Path:
    return build_sweep_dir(tmp_path_factory.mktemp("sweep"), tokenizer)
