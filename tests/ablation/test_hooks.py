"""``ablate`` always removes its hooks; the replacements behave as documented."""

import pytest
import torch

from modlens.ablation import ablate
from modlens.components import parse_components
from modlens.interventions.replacements import InterventionError, mean, replacement_fn, resample, resample_indices, zero
from modlens.models import Model
from modlens.tasks import SyntheticTask, TaskLayout


def n_hooks(model: Model) -> int:
    points = {id(hp): hp for hp in model.bridge.hook_dict.values()}.values()
    return sum(len(hp.fwd_hooks) + len(hp.bwd_hooks) for hp in points)


def test_hooks_are_removed_after_an_exception(family_model: Model, layout: TaskLayout) -> None:
    batch = SyntheticTask.from_name("reverse", layout).sample(4, split="test", seed=0)
    before = n_hooks(family_model)
    with (
        pytest.raises(RuntimeError, match="boom"),
        ablate(
            family_model, parse_components(["L0H1", "L1N2", "L1.mlp"]), replacement="mean", reference=batch
        ) as bridge,
    ):
        assert n_hooks(family_model) == before + 3
        bridge(batch.tokens)
        raise RuntimeError("boom")
    assert n_hooks(family_model) == before


def test_ablate_changes_logits_only_inside(family_model: Model, layout: TaskLayout) -> None:
    batch = SyntheticTask.from_name("reverse", layout).sample(4, split="test", seed=0)
    with torch.no_grad():
        clean = family_model.bridge(batch.tokens)
        with ablate(family_model, parse_components(["L0.attn"]), replacement="zero") as bridge:
            ablated = bridge(batch.tokens)
        after = family_model.bridge(batch.tokens)
    assert (ablated - clean).abs().max() > 1e-3
    torch.testing.assert_close(after, clean, rtol=0, atol=0)


def test_replacements_that_need_a_reference_say_so(family_model: Model) -> None:
    with (
        pytest.raises(InterventionError, match="needs a reference"),
        ablate(family_model, parse_components(["L0H0"]), replacement="mean"),
    ):
        pass
    with pytest.raises(InterventionError, match="unknown replacement 'median'"):
        replacement_fn("median", None)


def test_replacement_values() -> None:
    ref = torch.arange(24.0).reshape(3, 4, 2)  # batch 3, pos 4
    act = torch.ones(5, 3, 2)
    torch.testing.assert_close(zero(None)(act), torch.zeros_like(act))
    torch.testing.assert_close(mean(ref)(act), ref.mean(0)[:3].expand(5, 3, 2))
    rows = resample_indices(3, 5, seed=0)
    assert (rows != torch.arange(5) % 3).all() or True  # rows >= 3 may match mod 3; check rows < 3 below
    assert all(int(rows[i]) != i for i in range(3))
    torch.testing.assert_close(resample(ref, seed=0)(act), ref[rows, :3])
    with pytest.raises(InterventionError, match="fewer than the 6"):
        mean(ref)(torch.ones(2, 6, 2))
