"""The same analyses on a CUDA device as on the CPU: ablation sweeps (against the loop on the device),
activation and weight drift, masks and fine-tuning. Skipped where no GPU is present (CI has none)."""

import copy

import numpy as np
import pandas as pd
import pytest
import torch

from modlens.ablation import run_ablation_loop, run_ablation_sweep
from modlens.components import enumerate_components, parse_components
from modlens.drift import run_activation_drift, run_weight_drift
from modlens.masks import fit_mask
from modlens.models import Model
from modlens.tasks import Batch, SyntheticTask, TaskLayout
from modlens.training import FinetuneConfig, finetune

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

RTOL, ATOL = 1e-5, 1e-6  # float32, as in tests/ablation


def on_cuda(model: Model) -> Model:
    return model.with_weights(copy.deepcopy(model.hf).to("cuda"))


@pytest.fixture(scope="module")
def batch(layout: TaskLayout) -> Batch:
    return SyntheticTask.from_name("reverse", layout).sample(12, split="test", seed=0)


def assert_frames_close(a: pd.DataFrame, b: pd.DataFrame, columns: list[str], **tol: float) -> None:
    assert list(a.columns) == list(b.columns)
    for col in columns:
        np.testing.assert_allclose(a[col].to_numpy(float), b[col].to_numpy(float), **tol)


@pytest.mark.parametrize("replacement", ["zero", "mean", "resample"])
def test_sweep_on_cuda_equals_the_loop_and_the_cpu(family_model: Model, batch: Batch, replacement: str) -> None:
    comps = enumerate_components(family_model.spec, "head") + parse_components(["L0.mlp", "L1.attn", "L0N9"])
    gpu = on_cuda(family_model)
    fast = run_ablation_sweep(gpu, batch, comps, replacement=replacement, seed=2, progress=False)
    slow = run_ablation_loop(gpu, batch, comps, replacement=replacement, seed=2)
    cpu = run_ablation_sweep(family_model, batch, comps, replacement=replacement, seed=2, progress=False)
    assert_frames_close(fast, slow, ["clean", "ablated", "change"], rtol=RTOL, atol=ATOL)
    assert_frames_close(fast, cpu, ["clean", "ablated", "change"], rtol=1e-4, atol=1e-5)
    assert fast["change"].abs().max() > 1e-4


def test_drift_on_cuda_equals_the_cpu(family_model: Model, batch: Batch) -> None:
    tuned = family_model.with_weights(copy.deepcopy(family_model.hf))
    with torch.no_grad():
        for p in tuned.hf.parameters():
            p.add_(0.01 * torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
    measures = ("linear_cka", "debiased_cka", "cosine", "rel_change")
    cpu = run_activation_drift(family_model, tuned, batch, measures=measures)
    gpu = run_activation_drift(on_cuda(family_model), on_cuda(tuned), batch, measures=measures)
    assert_frames_close(gpu, cpu, list(measures), rtol=1e-4, atol=1e-5)
    w_cpu, w_gpu = run_weight_drift(family_model, tuned), run_weight_drift(on_cuda(family_model), on_cuda(tuned))
    numeric = [c for c in w_cpu.columns if pd.api.types.is_float_dtype(w_cpu[c])]
    assert_frames_close(w_gpu, w_cpu, numeric, rtol=1e-4, atol=1e-4)


@pytest.mark.filterwarnings("ignore:the model scores at chance")
def test_masks_and_finetuning_run_on_cuda(family_model: Model, batch: Batch, layout: TaskLayout) -> None:
    gpu = on_cuda(family_model)
    mask = fit_mask(gpu, batch, steps=5, batch_size=8)
    assert 0.0 <= mask.density <= 1.0
    config = FinetuneConfig(max_steps=5, eval_every=5, batch_size=8, n_val=16)
    result = finetune(gpu, SyntheticTask.from_name("sort", layout), config, progress=False)
    assert result.model.device.type == "cuda"
    assert result.steps == 5 and len(result.history) == 2
