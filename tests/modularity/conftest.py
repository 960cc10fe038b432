"""Fixtures of the modularity tests: the hand-written GPT-NeoX whose operations live in known neurons."""

import pytest
import torch
from neox_truth import reference_batch, reuse_model  # type: ignore[import-not-found]

from modlens.models import Model
from modlens.tasks import Batch


@pytest.fixture(scope="session")
def direct() -> Model:
    """Composites containing F run through F's neurons N_F."""
    return reuse_model()


@pytest.fixture(scope="session")
def rerouted() -> Model:
    """Composites containing F run through other neurons N_F'; primitive F prompts still use N_F."""
    return reuse_model(rerouted=True)


@pytest.fixture(scope="session")
def reference() -> Batch:
    return reference_batch()


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models run fastest on one thread (and robustly on a shared, oversubscribed machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
