"""Each fine-tuning method changes only what it should: parameters outside its scope stay bit-identical, SVF keeps
every singular vector, LoRA merged equals LoRA unmerged, SVF at unit scales is the base, proxy-tuning never touches
the base's weights."""

import copy

import pytest
import torch

from modlens import names
from modlens.ablation import ablate
from modlens.ablation.proxy import ablate_proxy
from modlens.components import parse_components
from modlens.errors import ConfigError
from modlens.models import Model, tiny_model
from modlens.models.modules import MODULE_PATHS
from modlens.tasks import SyntheticTask, TaskLayout
from modlens.tasks.metrics import answer_accuracy
from modlens.training import (
    METHODS,
    FinetuneConfig,
    Lora,
    NoWeightsError,
    Proxy,
    ProxyModel,
    Svf,
    Upper,
    apply_scales,
    finetune,
)
from modlens.training.methods.base import layer_of, layer_prefix

# target 1.0 is out of reach in 4 steps: every run takes exactly max_steps
SHORT = FinetuneConfig(max_steps=4, target_accuracy=1.0, eval_every=2, batch_size=8, lr=1e-2, n_val=16)


def _state(model: Model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.hf.state_dict().items()}


def _changed(before: dict[str, torch.Tensor], after: Model) -> set[str]:
    now = after.hf.state_dict()
    assert set(now) == set(before)
    return {k for k in before if not torch.equal(before[k], now[k])}


@pytest.fixture(scope="module")
def task(layout: TaskLayout) -> SyntheticTask:
    return SyntheticTask.from_name("increment∘reverse", layout)


def test_registry_holds_exactly_the_listed_names() -> None:
    assert tuple(METHODS) == names.FINETUNE_METHODS
    assert all(cls.name == name for name, cls in METHODS.items())


def test_full_changes_weights_and_leaves_the_input_model(family_model: Model, task: SyntheticTask) -> None:
    before = _state(family_model)
    result = finetune(family_model, task, SHORT, progress=False)
    assert result.method == "full" and result.adapter == {}
    assert _changed(before, result.model)  # it trained
    assert not _changed(before, family_model)  # the input is untouched


def test_upper_trains_only_the_upper_layers_and_final_norm(family_model: Model, task: SyntheticTask) -> None:
    before = _state(family_model)
    result = finetune(family_model, task, SHORT, method=Upper(upper_from=1), progress=False)
    prefix = layer_prefix(family_model)
    final_norm = MODULE_PATHS[family_model.spec.architecture]["final_norm"] + "."
    in_scope = {k for k in before if layer_of(k, prefix) == 1 or k.startswith(final_norm)}
    changed = _changed(before, result.model)
    assert any(layer_of(k, prefix) == 1 for k in changed), "the upper layer trained"
    assert changed <= in_scope, f"frozen parameters changed: {sorted(changed - in_scope)}"
    assert not _changed(before, family_model)


def test_upper_defaults_to_the_upper_half_and_refuses_a_missing_layer(family_model: Model) -> None:
    assert Upper().split(family_model) == family_model.spec.n_layers // 2
    with pytest.raises(ConfigError, match="upper_from"):
        Upper(upper_from=family_model.spec.n_layers).trainable(family_model)


def test_lora_changes_only_its_target_weights(family_model: Model, task: SyntheticTask) -> None:
    before = _state(family_model)
    result = finetune(family_model, task, SHORT, method=Lora(rank=2, alpha=4), progress=False)
    targets = {k.split(".lora_")[0].removeprefix("base_model.model.") for k in result.adapter}
    assert targets and all(".lora_A." in k or ".lora_B." in k for k in result.adapter)
    in_scope = {f"{t}.weight" for t in targets}
    changed = _changed(before, result.model)
    assert changed and changed <= in_scope, f"outside LoRA's targets: {sorted(changed - in_scope)}"
    assert not _changed(before, family_model)


def test_lora_is_deterministic_whatever_ran_before(family_model: Model, task: SyntheticTask) -> None:
    """The adapters' random initialisation is seeded by the method, not drawn from the global generator (a unit's
    result must not depend on the units a worker ran before it)."""
    results = []
    for draw in (1, 2):
        torch.manual_seed(draw)  # a different global state before each fine-tune
        results.append(finetune(family_model, task, SHORT, method=Lora(rank=2, alpha=4), progress=False).adapter)
    assert results[0].keys() == results[1].keys()
    assert all(torch.equal(results[0][k], results[1][k]) for k in results[0])
    other = finetune(family_model, task, SHORT, method=Lora(rank=2, alpha=4, seed=1), progress=False).adapter
    assert any(not torch.equal(other[k], results[0][k]) for k in other if "lora_A" in k)


def test_lora_merged_equals_unmerged(family_model: Model, task: SyntheticTask) -> None:
    lora = Lora(rank=2, alpha=4)
    module = lora.trainable(family_model)
    with torch.no_grad():  # B starts at zero (the adapter is a no-op): give it values, as training would
        gen = torch.Generator().manual_seed(0)
        for name, p in module.named_parameters():
            if "lora_B" in name:
                p.copy_(0.3 * torch.randn(p.shape, generator=gen))
        tokens = task.sample(8, split="test").tokens
        unmerged = module.eval()(tokens).logits
        merged = lora.merged(module)(tokens).logits
    assert not torch.allclose(unmerged, family_model.logits(tokens), atol=1e-3)
    torch.testing.assert_close(merged, unmerged, rtol=1e-5, atol=1e-5)


def test_svf_with_unit_scales_is_the_base(family_model: Model, task: SyntheticTask) -> None:
    tokens = task.sample(8, split="test").tokens
    svf = Svf()
    module = svf.trainable(family_model).eval()
    ones = {name: torch.ones_like(z) for name, z in svf.adapter(module).items()}
    assert set(ones) == set(svf.matrices(family_model))
    with torch.no_grad():
        torch.testing.assert_close(module(tokens).logits, family_model.logits(tokens), rtol=0, atol=0)
    same = apply_scales(family_model, ones)
    torch.testing.assert_close(same.logits(tokens), family_model.logits(tokens), rtol=0, atol=0)


def test_svf_changes_only_singular_values_of_its_targets(family_model: Model, task: SyntheticTask) -> None:
    before = _state(family_model)
    result = finetune(family_model, task, SHORT, method="svf", progress=False)
    scales = result.adapter
    assert scales and any(not torch.equal(z, torch.ones_like(z)) for z in scales.values())
    changed = _changed(before, result.model)
    in_scope = {f"{name}.weight" for name in scales}
    assert changed and changed <= in_scope, f"outside SVF's targets: {sorted(changed - in_scope)}"
    tuned = result.model.hf.state_dict()
    for name, z in scales.items():
        w = before[f"{name}.weight"].double()
        u, s, vh = torch.linalg.svd(w, full_matrices=False)
        delta = tuned[f"{name}.weight"].double() - w
        # in the base's singular bases the change is diagonal (U and V kept), with entries σ (z − 1)
        projected = u.T @ delta @ vh.T
        torch.testing.assert_close(projected, torch.diag(s * (z.double() - 1)), rtol=0, atol=1e-5)
    assert not _changed(before, family_model)


def test_svf_refuses_targets_that_match_nothing(family_model: Model) -> None:
    with pytest.raises(ConfigError, match="match no weight matrix"):
        Svf(targets=("no_such_module",)).matrices(family_model)
    with pytest.raises(ConfigError, match="no module"):
        apply_scales(family_model, {"nowhere": torch.ones(3)})


@pytest.fixture(scope="module")
def expert(tokenizer) -> Model:
    """A smaller model over the same vocabulary: proxy-tuning's expert."""
    return tiny_model("gpt_neox", tokenizer=tokenizer, n_layers=1, d_model=16, n_heads=2, n_ctx=32, seed=1)


def test_proxy_tuning_never_touches_the_base(family_model: Model, expert: Model, task: SyntheticTask) -> None:
    base_before, expert_before = _state(family_model), _state(expert)
    result = finetune(family_model, task, SHORT, method=Proxy(expert=expert), progress=False)
    proxy = result.model
    assert isinstance(proxy, ProxyModel) and result.method == "proxy"
    assert not _changed(base_before, family_model) and not _changed(expert_before, expert)
    assert proxy.base is family_model and proxy.untuned is expert
    assert _changed(expert_before, proxy.tuned)  # the expert trained
    batch = task.sample(8, split="test")
    offset = proxy.tuned.logits(batch.tokens) - expert.logits(batch.tokens)
    expected = family_model.logits(batch.tokens) + offset
    torch.testing.assert_close(proxy.logits(batch.tokens), expected, rtol=0, atol=0)
    assert 0.0 <= float(answer_accuracy(proxy.logits(batch.tokens), batch)) <= 1.0  # behavioural metrics apply
    # the last validation check judged the proxy's logits
    val = task.sample(SHORT.n_val, split="val", seed=SHORT.seed)
    final = float(result.history["val_accuracy"].iloc[-1])
    assert final == pytest.approx(float(answer_accuracy(proxy.logits(val.tokens), val)))


def test_a_proxy_has_no_weights_to_analyse(family_model: Model, expert: Model) -> None:
    proxy = ProxyModel(family_model, copy.deepcopy(expert), expert)
    with pytest.raises(NoWeightsError, match="no weights"):
        proxy.hf  # noqa: B018 (the access is the test)
    with pytest.raises(NoWeightsError, match="NaN"):
        proxy.bridge  # noqa: B018
    assert "undefined" in proxy.reason


def test_ablating_a_proxys_base_keeps_the_experts_offset(family_model: Model, expert: Model, task) -> None:
    """Ablation reads the proxy's logits: the base's part is ablated, the experts' offset is added unchanged."""
    tuned = finetune(expert, task, SHORT, progress=False).model
    proxy = ProxyModel(family_model, tuned, expert)
    batch = task.sample(16, split="test")
    offset = tuned.logits(batch.tokens) - expert.logits(batch.tokens)
    components = parse_components(["L0.mlp", "L0H1"])
    with ablate(family_model, components, replacement="mean", reference=batch) as bridge:
        ablated_base = bridge(batch.tokens)
    with ablate_proxy(proxy, components, replacement="mean", reference=batch) as ablated:
        torch.testing.assert_close(ablated.logits(batch.tokens), ablated_base + offset)
        assert not torch.allclose(ablated.logits(batch.tokens), proxy.logits(batch.tokens))
    torch.testing.assert_close(proxy.logits(batch.tokens), family_model.logits(batch.tokens) + offset)  # hooks gone
    with ablate_proxy(proxy, [], replacement="zero") as untouched:
        torch.testing.assert_close(untouched.logits(batch.tokens), proxy.logits(batch.tokens))


def test_proxy_needs_an_expert_of_the_same_vocabulary(family_model: Model, task: SyntheticTask) -> None:
    with pytest.raises(ConfigError, match="expert"):
        finetune(family_model, task, SHORT, method="proxy", progress=False)
    other = tiny_model("gpt_neox", d_vocab=7, n_layers=1, d_model=16, n_heads=2, n_ctx=32)
    with pytest.raises(ConfigError, match="vocabulary"):
        finetune(family_model, task, SHORT, method=Proxy(expert=other), progress=False)


def test_unknown_method_is_refused(family_model: Model, task: SyntheticTask) -> None:
    with pytest.raises(ConfigError, match="unknown fine-tuning method 'dora'"):
        finetune(family_model, task, SHORT, method="dora", progress=False)
