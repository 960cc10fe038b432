"""Shared fixtures: seeded tiny models of each supported family, a synthetic layout, a small pretrained model."""

from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer

from modlens.models import FAMILIES, Model, tiny_model
from modlens.tasks import PRIMITIVES, SyntheticTask, TaskLayout
from modlens.training import PretrainConfig, Trajectory, pretrain

# One thread: tiny models gain nothing from more, and oversubscribed cores make OpenMP threads spin.
torch.set_num_threads(1)

SMALL_LAYOUT = TaskLayout(n_digits=4)


@pytest.fixture(scope="session")
def layout() -> TaskLayout:
    return SMALL_LAYOUT


@pytest.fixture(scope="session")
def tokenizer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthetic vocabulary's tokenizer, saved to disk (the bridge reloads tokenizers from disk)."""
    path = tmp_path_factory.mktemp("tokenizer")
    SMALL_LAYOUT.vocab.tokenizer().save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tokenizer(tokenizer_dir: Path):
    return AutoTokenizer.from_pretrained(tokenizer_dir)


@pytest.fixture(scope="session", params=FAMILIES)
def family_model(request: pytest.FixtureRequest, tokenizer) -> Model:
    """A tiny random model of each family (Llama with grouped-query attention: 4 heads, 2 kv heads)."""
    extra = {"n_kv_heads": 2} if request.param == "llama" else {}
    return tiny_model(request.param, tokenizer=tokenizer, n_layers=2, d_model=32, n_heads=4, n_ctx=32, **extra)


@pytest.fixture(scope="session")
def primitive_tasks() -> list[SyntheticTask]:
    return [SyntheticTask((p,), SMALL_LAYOUT) for p in PRIMITIVES]


@pytest.fixture(scope="session")
def small_trajectory(tokenizer, primitive_tasks) -> Trajectory:
    """A 2-layer GPT-NeoX pretrained on the six primitives (4 digits), checkpoints at 0, 300 and 900 steps.

    900 steps reach about 98% held-out whole-answer accuracy; about 15-25 s on 2 cores.
    """
    init = tiny_model("gpt_neox", tokenizer=tokenizer, n_layers=2, d_model=64, n_heads=4, d_mlp=256, n_ctx=16)
    config = PretrainConfig(steps=900, checkpoints=(0, 300, 900), batch_size=64, lr=3e-3, seed=0)
    return pretrain(init, primitive_tasks, config, progress=False)
