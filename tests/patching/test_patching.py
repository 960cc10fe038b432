"""Activation patching: the exact sweep equals the plain hook loop, and the normalised metric has its ends."""

import json

import pytest
import torch
from frames import assert_frames_close  # type: ignore[import-not-found]

from modlens.ablation import compare_attribution
from modlens.components import Component, enumerate_components
from modlens.errors import TaskError
from modlens.models import Model
from modlens.patching import (
    encode_pairs,
    load_patching_batch,
    patch_sites,
    patching_metric,
    run_attribution_patching_pairs,
    run_patching_loop,
    run_patching_sweep,
)
from modlens.tasks.prompts import PromptExample


def pair(clean: str, answer: str, corrupt: str, wrong: str) -> PromptExample:
    return PromptExample(f"<bos> {clean} =", f" {answer}", f"<bos> {corrupt} =", f" {wrong}")


EXAMPLES = [
    pair("reverse id 1 2 3 4", "4", "reverse id 5 6 7 8", "8"),
    pair("reverse id 3 1 4 1", "1", "reverse id 2 7 1 8", "8"),
    pair("sort id 9 2 6 5", "2", "sort id 3 5 8 9", "3"),
    pair("increment id 2 7 1 8", "3", "increment id 4 0 2 6", "5"),
]


@pytest.fixture(scope="module")
def pairs(tokenizer):
    return encode_pairs(EXAMPLES, tokenizer, n_ctx=32)


def some_components(model: Model) -> list[Component]:
    spec = model.spec
    return (
        enumerate_components(spec, "head")
        + enumerate_components(spec, "attn")
        + enumerate_components(spec, "mlp")
        + enumerate_components(spec, "resid")
        + [Component(0, "neuron", 3), Component(1, "neuron", spec.d_mlp - 1)]
    )


@pytest.mark.parametrize("direction", ["noising", "denoising"])
@pytest.mark.parametrize("positions", [None, "each"])
def test_sweep_equals_plain_loop(family_model: Model, pairs, direction, positions) -> None:
    comps = some_components(family_model)
    fast = run_patching_sweep(family_model, pairs, comps, positions=positions, direction=direction, progress=False)
    slow = run_patching_loop(family_model, pairs, comps, positions=positions, direction=direction)
    metric = patching_metric(family_model, pairs)
    unit = 1 / abs(metric.clean_value - metric.corrupt_value)
    assert_frames_close(fast, slow, value="patched", base="unpatched", key="site", unit=unit)
    assert fast["change"].abs().max() > 1e-3  # the patches move the metric, or equality proves nothing
    if positions == "each":
        assert len(fast) == len(comps) * (pairs.n_pos - 1)
        assert fast["site"].iloc[1] == f"{comps[0]}@1"


def test_normalised_metric_ends(family_model: Model, pairs) -> None:
    everything = [Component(0, "resid")]  # the embeddings: patching them at every position swaps the prompt
    noising = run_patching_sweep(family_model, pairs, everything, progress=False)
    assert noising["unpatched"].iloc[0] == pytest.approx(1.0, abs=1e-4)
    assert noising["patched"].iloc[0] == pytest.approx(0.0, abs=1e-4)
    denoising = run_patching_sweep(family_model, pairs, everything, direction="denoising", progress=False)
    assert denoising["unpatched"].iloc[0] == pytest.approx(0.0, abs=1e-4)
    assert denoising["patched"].iloc[0] == pytest.approx(1.0, abs=1e-4)
    metric = patching_metric(family_model, pairs)
    assert metric.clean_value != pytest.approx(metric.corrupt_value)


def test_positions_where_the_prompts_agree_change_nothing(family_model: Model, pairs) -> None:
    # every pair shares "<bos> op id" and "=": patching the embedding there swaps a token for itself
    frame = run_patching_sweep(family_model, pairs, [Component(0, "resid")], positions="each", progress=False)
    change = frame.set_index("position")["change"]
    same = (pairs.clean.tokens == pairs.corrupt.tokens)[:, :-1].all(dim=0)
    assert same.tolist() == [True, True, True, False, False, False, False, True]
    assert change[same.numpy()].abs().max() < 1e-9
    assert (change[~same.numpy()].abs() > 1e-4).all()


def test_attribution_sums_over_positions_and_is_compared_on_sites(family_model: Model, pairs) -> None:
    comps = enumerate_components(family_model.spec, "head") + enumerate_components(family_model.spec, "resid")
    whole = run_attribution_patching_pairs(family_model, pairs, comps)
    each = run_attribution_patching_pairs(family_model, pairs, comps, positions="each")
    summed = each.groupby("component", sort=False)["change"].sum()
    assert torch.allclose(
        torch.tensor(summed.loc[whole["component"]].to_numpy()), torch.tensor(whole["change"].to_numpy()), atol=1e-5
    )
    exact = run_patching_sweep(family_model, pairs, comps, positions="each", progress=False)
    check = compare_attribution(each, exact, key="site")
    assert -1.0 <= check.spearman <= 1.0 and len(check.top_k) == 10


def test_pairs_are_checked(tokenizer, tmp_path) -> None:
    with pytest.raises(TaskError, match="example 1: the prompt is 8 tokens and corrupt_prompt 9"):
        encode_pairs([pair("reverse id 1 2 3 4", "4", "reverse id 1 2 3 4 5", "5")], tokenizer, n_ctx=32)
    with pytest.raises(TaskError, match="start with the same token"):
        encode_pairs([pair("reverse id 1 2", "2", "reverse id 3 2", "2")], tokenizer, n_ctx=32)
    with pytest.raises(TaskError, match="example 1: patching needs corrupt_prompt and wrong_answer"):
        encode_pairs([PromptExample("<bos> reverse id 1 =", " 1")], tokenizer, n_ctx=32)
    mixed = encode_pairs([EXAMPLES[0], pair("sort id 1 2", "1", "sort id 3 4", "3")], tokenizer, n_ctx=32)
    with pytest.raises(TaskError, match="per-position patching needs pairs of one token length"):
        patch_sites(mixed, [Component(0, "resid")], "each")
    with pytest.raises(TaskError, match=r"positions \[8\] are outside the prompts, which have positions 0..7"):
        patch_sites(encode_pairs(EXAMPLES, tokenizer, n_ctx=32), [Component(0, "resid")], [0, 8])


def test_prompt_file_with_counterfactuals(tokenizer, tmp_path) -> None:
    file = tmp_path / "ioi.jsonl"
    rows = [
        {"prompt": e.prompt, "answer": e.answer, "corrupt_prompt": e.corrupt_prompt, "wrong_answer": e.wrong_answer}
        for e in EXAMPLES
    ]
    file.write_text("\n".join(json.dumps(r) for r in rows))
    loaded = load_patching_batch(file, tokenizer, n_ctx=32)
    assert loaded.clean.tokens.shape == loaded.corrupt.tokens.shape == (4, 9)
    assert (loaded.clean.tokens[:, -1] == loaded.answer).all() and (loaded.corrupt.tokens[:, -1] == loaded.answer).all()
    assert loaded.clean.answer_mask[:, -1].all() and loaded.clean.answer_mask.sum() == 4
    file.write_text(json.dumps({**rows[0], "wrong_answer": 3}))
    with pytest.raises(TaskError, match="line 1: wrong_answer must be a non-empty string"):
        load_patching_batch(file, tokenizer, n_ctx=32)


@pytest.mark.parametrize("path", ["modules", "no_query_path"])
def test_skipped_prefix_on_every_resume_path(family_model: Model, pairs, monkeypatch, path) -> None:
    # per-position patches leave every earlier position clean; the sweep recomputes only the later ones,
    # through written-out layers by default, here through the modules / without the last layer's query path
    from modlens.interventions.stack import DecoderStack

    # the check on the clean batch fails for every layer run whole (modules), or for the last layer's query path
    fails_for_all = path == "modules"
    monkeypatch.setattr(
        DecoderStack, "reproduces", lambda self, records, layer, positions: (positions is None) != fails_for_all
    )
    comps = [Component(0, "head", 1), Component(0, "mlp"), Component(1, "resid"), Component(0, "neuron", 3)]
    fast = run_patching_sweep(family_model, pairs, comps, positions="each", progress=False)
    slow = run_patching_loop(family_model, pairs, comps, positions="each")
    metric = patching_metric(family_model, pairs)
    unit = 1 / abs(metric.clean_value - metric.corrupt_value)
    assert_frames_close(fast, slow, value="patched", base="unpatched", key="site", unit=unit)
    assert fast["change"].abs().max() > 1e-3
