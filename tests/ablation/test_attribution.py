"""Attribution patching: estimates equal finite-difference derivatives; agreement reports are consistent."""

import functools

import pandas as pd
import pytest
import torch

from modlens.ablation.attribution import check_attribution, compare_attribution, run_attribution_patching
from modlens.components import Component, parse_components
from modlens.models import FAMILIES, Model, tiny_model
from modlens.tasks import Batch, SyntheticTask, TaskLayout, logit_diff


@pytest.fixture(scope="module")
def batch(layout: TaskLayout) -> Batch:
    return SyntheticTask.from_name("reverse", layout).sample(6, split="test", seed=0)


@pytest.fixture(scope="module", params=FAMILIES)
def model64(request: pytest.FixtureRequest, tokenizer) -> Model:
    """float64, so central differences are accurate to ~eps^2 (the test uses logit_diff: loss casts to float32)."""
    extra = {"n_kv_heads": 2} if request.param == "llama" else {}
    m = tiny_model(request.param, tokenizer=tokenizer, n_layers=2, d_model=32, n_heads=4, n_ctx=32, **extra)
    return Model(hf=m.hf.double(), tokenizer=m.tokenizer)


def _scaled(act: torch.Tensor, hook, *, c: Component, target: torch.Tensor, eps: float) -> torch.Tensor:
    """Moves the component's activation a fraction ``eps`` of the way to its ablated value."""
    out = act.clone()
    if c.kind in ("head", "neuron"):
        out[:, :, c.index] = act[:, :, c.index] + eps * (target - act[:, :, c.index])
    else:
        out = act + eps * (target - act)
    return out


@pytest.mark.parametrize("replacement", ["zero", "mean"])
def test_estimate_matches_finite_differences(model64: Model, batch: Batch, replacement: str) -> None:
    comps = parse_components(["L0H1", "L1H3", "L0.attn", "L1.mlp", "L0N5", "L1N9"])
    est = run_attribution_patching(model64, batch, comps, replacement=replacement, metric=logit_diff)
    bridge = model64.bridge
    names = sorted({c.hook_name for c in comps})
    with torch.no_grad():
        _, cache = bridge.run_with_cache(batch.tokens, names_filter=names)
    # Llama's RMSNorm computes in float32 even for float64 inputs, so its differences carry ~1e-8
    # rounding: take a larger step and accept the step's O(eps^2) curvature error.
    llama = model64.spec.architecture == "LlamaForCausalLM"
    eps, rel, tol = (3e-3, 1e-2, 1e-6) if llama else (1e-4, 1e-5, 1e-9)
    for c, estimate in zip(comps, est["change"], strict=True):
        act = cache[c.hook_name]
        act = act[:, :, c.index] if c.kind in ("head", "neuron") else act
        target = torch.zeros_like(act) if replacement == "zero" else act.mean(0, keepdim=True).expand_as(act)
        values = []
        for e in (eps, -eps):
            hook = functools.partial(_scaled, c=c, target=target, eps=e)
            with torch.no_grad():
                values.append(
                    float(logit_diff(bridge.run_with_hooks(batch.tokens, fwd_hooks=[(c.hook_name, hook)]), batch))
                )
        derivative = (values[0] - values[1]) / (2 * eps)
        assert estimate == pytest.approx(derivative, rel=rel, abs=tol), str(c)
    assert est["change"].abs().max() > 1e-4  # non-trivial directions


def test_estimate_is_exact_on_a_linear_toy() -> None:
    """When the metric is linear in the activation, the first-order estimate is the exact change."""
    acts = torch.randn(4, 5, 3, generator=torch.Generator().manual_seed(0))
    weights = torch.randn(4, 5, 3, generator=torch.Generator().manual_seed(1))

    def metric(a: torch.Tensor) -> torch.Tensor:
        return (a * weights).sum()

    probe = torch.zeros_like(acts, requires_grad=True)
    (grad,) = torch.autograd.grad(metric(acts + probe), probe)
    target = acts.mean(0, keepdim=True).expand_as(acts)
    estimate = ((target - acts) * grad).sum()
    torch.testing.assert_close(estimate, metric(target) - metric(acts), rtol=1e-6, atol=1e-6)


def test_frame_shape_and_agreement(batch: Batch, tokenizer) -> None:
    model = tiny_model("gpt2", tokenizer=tokenizer, n_layers=2, d_model=32, n_heads=4, n_ctx=32)
    comps = parse_components(["L0H0", "L0H1", "L0H2", "L0H3", "L1H0", "L1H1", "L1.mlp", "L0.mlp"])
    est = run_attribution_patching(model, batch, comps, replacement="mean")
    assert list(est.columns) == [
        "component",
        "layer",
        "kind",
        "index",
        "replacement",
        "metric",
        "clean",
        "ablated",
        "change",
    ]
    check = check_attribution(model, batch, est, top_k=3)
    assert -1.0 <= check.spearman <= 1.0 and 0.0 <= check.top_k_overlap <= 1.0
    assert list(check.top_k.columns) == ["component", "estimate", "exact", "error"] and len(check.top_k) == 3
    # small ablations of a random model are close to linear: the screen ranks them well
    assert check.spearman > 0.8


def test_compare_attribution_by_hand() -> None:
    est = pd.DataFrame({"component": ["a", "b", "c", "d"], "change": [0.4, -0.3, 0.2, 0.01]})
    exact = pd.DataFrame({"component": ["a", "b", "c", "d"], "change": [0.5, -0.1, 0.3, 0.0]})
    check = compare_attribution(est, exact, top_k=2)
    # ranks: est (4, 1, 3, 2), exact (4, 1, 3, 2) -> identical ranking
    assert check.spearman == pytest.approx(1.0)
    assert list(check.top_k["component"]) == ["a", "b"]
    assert check.top_k_overlap == pytest.approx(0.5)  # exact top-2 by |change| is {a, c}
