"""Fixtures of the mask tests: the hand-written two-head model and its two subroutines."""

import pytest
import torch
from ground_truth import task_batch, two_head_model  # type: ignore[import-not-found]

from modlens.models import Model
from modlens.tasks import Batch


@pytest.fixture(scope="session")
def two_heads() -> Model:
    return two_head_model()


@pytest.fixture(scope="session")
def batches() -> dict[str, Batch]:
    return {name: task_batch(name, 256, seed=0) for name in "AB"}


@pytest.fixture(scope="session")
def eval_batches() -> dict[str, Batch]:
    return {name: task_batch(name, 128, seed=1) for name in "AB"}


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models run fastest on one thread, and on a shared, oversubscribed machine two threads ran
    these fits 50-100x slower (thread barriers wait on busy cores)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
