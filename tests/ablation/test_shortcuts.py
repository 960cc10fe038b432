"""The sweep's shortcuts each equal the plain loop: queries at scored positions only, CPU row blocks, fallbacks."""

from pathlib import Path

import pytest
import torch
from frames import assert_frames_close  # type: ignore[import-not-found]

import modlens.ablation.sweep as sweep_module
import modlens.interventions.query_attention as query_attention_module
from modlens.ablation import run_ablation_loop, run_ablation_sweep
from modlens.ablation.positions import predicting_positions
from modlens.cli import main
from modlens.components import Component, enumerate_components, parse_components
from modlens.interventions.query_attention import QueryAttention
from modlens.interventions.stack import CleanRun, DecoderStack
from modlens.models import Model, load_model, save_model, tiny_model
from modlens.tasks import Batch, SyntheticTask, TaskLayout, answer_accuracy, logit_diff, loss, token_accuracy


@pytest.fixture(scope="module")
def batch(layout: TaskLayout) -> Batch:
    return SyntheticTask.from_name("reverse", layout).sample(12, split="test", seed=0)


def last_layer_components(model: Model) -> list[Component]:
    last = model.spec.n_layers - 1
    return [c for c in enumerate_components(model.spec, "head") if c.layer == last] + parse_components(
        [f"L{last}.attn", f"L{last}.mlp", f"L{last}N5", "L0H1", "L0.mlp"]
    )


@pytest.mark.parametrize("positions", [[7, 8, 9, 10], [2, 9], [0], list(range(12))])
def test_query_positions_equal_the_full_last_layer(family_model: Model, batch: Batch, positions: list[int]) -> None:
    """Every family (Llama with grouped-query attention), contiguous or scattered positions, one or all."""
    stack = DecoderStack(family_model)
    records = stack.record(batch.tokens)
    pos = torch.tensor(positions)
    hidden = records[-1].resid_pre + 0.3 * torch.randn_like(records[-1].resid_pre)  # not the clean input
    fast = stack.last_layer_at(hidden, pos, records)
    slow = stack.resume(family_model.spec.n_layers - 1, hidden, records)[:, pos]
    torch.testing.assert_close(fast, slow, rtol=1e-5, atol=1e-5)
    assert CleanRun(stack, records, query_positions=pos).query_path


@pytest.mark.parametrize("replacement", ["zero", "mean", "resample"])
@pytest.mark.parametrize("metric", [loss, token_accuracy, answer_accuracy, logit_diff])
def test_last_layer_shortcuts_equal_the_loop(family_model: Model, batch: Batch, replacement: str, metric) -> None:
    comps = last_layer_components(family_model)
    fast = run_ablation_sweep(
        family_model, batch, comps, replacement=replacement, metric=metric, seed=2, progress=False
    )
    slow = run_ablation_loop(family_model, batch, comps, replacement=replacement, metric=metric, seed=2)
    assert_frames_close(fast, slow)


def test_user_metric_declared_answer_local(family_model: Model, batch: Batch) -> None:
    """A user metric that reads answer positions only may opt into the shortcut with ``answer_local=True``."""

    def doubled_loss(logits: torch.Tensor, batch: Batch) -> torch.Tensor:
        return 2 * loss(logits, batch)

    comps = last_layer_components(family_model)
    fast = run_ablation_sweep(family_model, batch, comps, metric=doubled_loss, answer_local=True, progress=False)
    slow = run_ablation_loop(family_model, batch, comps, metric=doubled_loss)
    assert_frames_close(fast, slow)


def test_user_metric_reading_every_position_gets_full_logits(family_model: Model, batch: Batch) -> None:
    """Without a declaration the sweep cannot know which positions a function reads: it computes them all."""

    def first_and_last(logits: torch.Tensor, batch: Batch) -> torch.Tensor:
        return logits[:, 0].logsumexp(-1).mean() - logits[:, -1].max(-1).values.mean()

    comps = last_layer_components(family_model)
    fast = run_ablation_sweep(family_model, batch, comps, replacement="mean", metric=first_and_last, progress=False)
    slow = run_ablation_loop(family_model, batch, comps, replacement="mean", metric=first_and_last)
    assert_frames_close(fast, slow)
    assert fast["change"].abs().max() > 1e-4


def test_a_failing_query_path_check_falls_back(
    family_model: Model, batch: Batch, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If the query-position attention disagreed with the layer, the sweep would use the full last layer."""

    def wrong(self: QueryAttention, normed: torch.Tensor, positions: torch.Tensor, attn_kwargs: dict) -> torch.Tensor:
        return torch.zeros(normed.shape[0], len(positions), normed.shape[-1])

    monkeypatch.setattr(QueryAttention, "__call__", wrong)
    stack = DecoderStack(family_model)
    records = stack.record(batch.tokens)
    assert not CleanRun(stack, records, query_positions=predicting_positions(batch)).query_path
    comps = parse_components(["L0H0", "L0.mlp", "L1H3", "L1N2"])
    fast = run_ablation_sweep(family_model, batch, comps, replacement="mean", progress=False)
    slow = run_ablation_loop(family_model, batch, comps, replacement="mean")
    assert_frames_close(fast, slow)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_query_path_check_is_tight_in_half_precision(
    tokenizer, layout: TaskLayout, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dtype: torch.dtype
) -> None:
    """The right path passes; a last layer finished at the neighbouring positions (about 0.09 of the residual's
    scale off here) fails in bfloat16 too, where the old tolerance (64 eps = 0.5 of the scale) let it through."""
    model = tiny_model("llama", tokenizer=tokenizer, n_layers=2, d_model=32, n_heads=4, n_kv_heads=2, n_ctx=32)
    half = load_model(save_model(model, tmp_path / "m"), dtype=dtype)
    batch = SyntheticTask.from_name("reverse", layout).sample(16, split="test", seed=0)
    stack = DecoderStack(half)
    records = stack.record(batch.tokens)
    positions = predicting_positions(batch)
    assert CleanRun(stack, records, query_positions=positions).query_path
    real = DecoderStack.layer_at

    def shifted(self: DecoderStack, layer: int, hidden: torch.Tensor, pos: torch.Tensor, recs: list) -> torch.Tensor:
        return real(self, layer, hidden, (pos + 1).clamp(max=hidden.shape[1] - 1), recs)

    monkeypatch.setattr(DecoderStack, "layer_at", shifted)
    assert not CleanRun(stack, records, query_positions=positions).query_path


@pytest.mark.parametrize("rows", [1, 5, 12, 40])
def test_row_blocks_equal_the_loop(
    family_model: Model, batch: Batch, rows: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Blocks of any size (5 straddles the ablations of a 12-row batch), the clean record included."""
    monkeypatch.setattr(sweep_module, "_block_rows", lambda model, length: rows)
    comps = enumerate_components(family_model.spec, "head") + parse_components(["L0.mlp", "L1.attn", "L0N9"])
    fast = run_ablation_sweep(family_model, batch, comps, replacement="resample", seed=4, progress=False)
    slow = run_ablation_loop(family_model, batch, comps, replacement="resample", seed=4)
    assert_frames_close(fast, slow)


def test_record_in_blocks_equals_one_pass(family_model: Model, batch: Batch) -> None:
    stack = DecoderStack(family_model)
    whole, blocked = stack.record(batch.tokens), stack.record(batch.tokens, block=5)
    for a, b in zip(whole, blocked, strict=True):
        for name in ("resid_pre", "z", "attn_out", "post", "mlp_out", "resid_post"):
            torch.testing.assert_close(getattr(b, name), getattr(a, name), rtol=1e-5, atol=1e-6)


def test_block_rows_shrink_with_the_widest_activation_on_cpu_only() -> None:
    """Rows per CPU block halve when the widest activation (here the MLP) doubles, never drop below the
    token floor, and other devices run whole chunks."""

    def rows(d_mlp: int, length: int) -> int | None:
        model = tiny_model("gpt2", n_layers=1, d_model=64, n_heads=4, d_mlp=d_mlp, n_ctx=512, d_vocab=16)
        return sweep_module._block_rows(model, length)

    narrow, wide = rows(1024, 16), rows(2048, 16)
    assert narrow is not None and wide is not None
    assert abs(narrow - 2 * wide) <= 1 and wide >= 1
    floor = sweep_module._MIN_BLOCK_TOKENS
    huge = rows(1 << 16, 64)  # one row alone is far above the byte budget: the token floor decides
    assert huge is not None and huge * 64 >= floor and (huge - 1) * 64 < floor and huge > 1
    model = tiny_model("gpt2", n_layers=1, d_model=64, n_heads=4, n_ctx=32, d_vocab=16)
    assert sweep_module._block_rows(model.with_weights(model.hf.to("meta")), 16) is None


@pytest.mark.parametrize(("needed", "n_pos", "kept"), [(10, 20, 16), (10, 12, 12), (18, 20, 18), (3, 3, 3)])
def test_kept_length(needed: int, n_pos: int, kept: int) -> None:
    assert sweep_module._kept_length(needed, n_pos) == kept


def test_a_shorter_reference_caps_the_padding(family_model: Model) -> None:
    """Positions kept past the last answer (for speed) never ask a reference for positions it lacks."""
    gen = torch.Generator().manual_seed(0)
    d_vocab = family_model.spec.d_vocab
    tokens = torch.randint(0, d_vocab, (6, 24), generator=gen)
    mask = torch.zeros_like(tokens, dtype=torch.bool)
    mask[:, 8:10] = True
    batch = Batch(tokens, mask, "random")
    reference = Batch(torch.randint(0, d_vocab, (5, 12), generator=gen), torch.zeros(5, 12, dtype=torch.bool))
    comps = parse_components(["L0H1", "L1H2", "L1.mlp"])
    fast = run_ablation_sweep(family_model, batch, comps, replacement="mean", reference=reference, progress=False)
    cut = Batch(tokens[:, :12], mask[:, :12], "random")  # the same answers; the loop needs equal lengths
    slow = run_ablation_loop(family_model, cut, comps, replacement="mean", reference=reference)
    assert_frames_close(fast, slow)


def test_progress_bar_over_chunks(family_model: Model, batch: Batch, capsys, monkeypatch) -> None:
    monkeypatch.setenv("MODLENS_PROGRESS", "1")
    monkeypatch.setattr(sweep_module, "PROGRESS_DELAY_S", 0.0)
    comps = parse_components(["L0H0", "L1H1", "L1.mlp"])
    run_ablation_sweep(family_model, batch, comps, memory_budget=1, progress=True)
    shown = capsys.readouterr().err
    assert "ablation sweep" in shown and "3/3" in shown
    run_ablation_sweep(family_model, batch, comps, memory_budget=1, progress=False)
    assert "ablation sweep" not in capsys.readouterr().err


def test_short_sweeps_stay_quiet(family_model: Model, batch: Batch, capsys, monkeypatch) -> None:
    monkeypatch.setenv("MODLENS_PROGRESS", "1")
    # a sweep that ends before the bar's delay shows nothing (a long delay: no dependence on machine speed)
    monkeypatch.setattr(sweep_module, "PROGRESS_DELAY_S", 3600.0)
    run_ablation_sweep(family_model, batch, parse_components(["L0H0", "L1H1"]), memory_budget=1)
    assert "ablation sweep" not in capsys.readouterr().err


def test_cli_no_progress(tokenizer, tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("MODLENS_PROGRESS", "1")
    monkeypatch.setattr(sweep_module, "PROGRESS_DELAY_S", 0.0)
    model = tiny_model("gpt_neox", tokenizer=tokenizer, n_layers=2, d_model=32, n_heads=4, n_ctx=32)
    path = save_model(model, tmp_path / "tiny")
    args = ["ablate", str(path), "--task", "reverse", "--n-examples", "4", "--components", "L0H1,L1.mlp"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    assert "ablation sweep" in capsys.readouterr().err
    assert main([*args, "--no-progress", "--out", str(tmp_path / "b")]) == 0
    assert "ablation sweep" not in capsys.readouterr().err


@pytest.mark.parametrize("partners", [True, False], ids=["partner-columns", "rotate-half"])
@pytest.mark.parametrize("positions", [None, [3, 7], [11]], ids=["all", "two", "one"])
def test_written_out_layer_equals_the_module(
    family_model: Model, batch: Batch, partners: bool, positions: list[int] | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``layer_at`` (the sweep's resumed layers) against the Hugging Face layer, both ways of rotating (GPT-2 has
    no rotary embedding; GPT-NeoX rotates 2 of 8 dimensions per head here, Llama all 8)."""
    if not partners:
        monkeypatch.setattr(query_attention_module, "_SHORT_HALF", 0)
    stack = DecoderStack(family_model)
    records = stack.record(batch.tokens)
    gen = torch.Generator().manual_seed(0)
    hidden = records[1].resid_pre + 0.3 * torch.randn(records[1].resid_pre.shape, generator=gen)
    pos = None if positions is None else torch.tensor(positions)
    fast = stack.layer_at(1, hidden, pos, records)
    slow = stack.resume(1, hidden, records)
    torch.testing.assert_close(fast, slow if pos is None else slow[:, pos], rtol=1e-5, atol=1e-5)
    rotary = records[1].attn_kwargs.get("position_embeddings")
    if rotary is not None:  # the path under test was taken
        projections = stack._attention[1]._projections_for(rotary[0].shape[-1])
        assert (projections.partner_dims > 0) == partners


@pytest.fixture(scope="module", params=["gpt_neox", "gpt2", "llama"])
def deep_model(request: pytest.FixtureRequest, tokenizer) -> Model:
    """Three layers, so that an ablation in layer 0 resumes a whole layer before the last."""
    extra = {"n_kv_heads": 2} if request.param == "llama" else {}
    return tiny_model(request.param, tokenizer=tokenizer, n_layers=3, d_model=32, n_heads=4, n_ctx=32, **extra)


@pytest.mark.parametrize("metric", ["loss", "all_positions"])
def test_sweep_resumes_through_written_out_layers(
    deep_model: Model, batch: Batch, metric: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Layers above an ablation run written out (on every position) and the sweep still equals the loop."""

    def all_positions(logits: torch.Tensor, batch: Batch) -> torch.Tensor:
        return logits.logsumexp(-1).mean()

    used: list[tuple[int, bool]] = []
    real = DecoderStack.layer_at

    def spy(self: DecoderStack, layer: int, hidden: torch.Tensor, positions, records: list) -> torch.Tensor:
        used.append((layer, positions is None))
        return real(self, layer, hidden, positions, records)

    monkeypatch.setattr(DecoderStack, "layer_at", spy)
    comps = parse_components(["L0H1", "L0.mlp", "L0N3", "L1H2", "L1.attn", "L2H0"])
    fn = loss if metric == "loss" else all_positions
    fast = run_ablation_sweep(deep_model, batch, comps, replacement="mean", metric=fn, progress=False)
    slow = run_ablation_loop(deep_model, batch, comps, replacement="mean", metric=fn)
    assert_frames_close(fast, slow)
    assert (1, True) in used
    assert ((2, True) in used) == (metric == "all_positions")  # with the query path the last layer runs partly


def test_a_wrong_written_out_layer_is_not_used(
    deep_model: Model, batch: Batch, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A written-out layer that disagreed with the module (here: attention without its causal mask) fails the
    check on the clean batch; the sweep then resumes through the modules and still equals the loop."""
    real = QueryAttention.__call__

    def unmasked(self: QueryAttention, normed: torch.Tensor, positions, attn_kwargs: dict) -> torch.Tensor:
        return real(self, normed, positions, {k: v for k, v in attn_kwargs.items() if k != "attention_mask"})

    monkeypatch.setattr(QueryAttention, "__call__", unmasked)
    stack = DecoderStack(deep_model)
    records = stack.record(batch.tokens)
    assert CleanRun(stack, records, resume_from=1).written_out == frozenset()
    comps = parse_components(["L0H1", "L0.mlp", "L1H2"])
    fast = run_ablation_sweep(deep_model, batch, comps, replacement="zero", progress=False)
    slow = run_ablation_loop(deep_model, batch, comps, replacement="zero")
    assert_frames_close(fast, slow)
