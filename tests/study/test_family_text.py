"""The study over checkpoints with a text tokenizer (issue 17): tiny GPT-2 checkpoints whose tokenizer is a
byte-level BPE learned here, as GPT-2's and Pythia's are, saved as Hugging Face directories and named in a family
file. The tasks are rendered for that tokenizer, one token per symbol, and the study runs end to end on them."""

import dataclasses
import json
from pathlib import Path

import pytest
from tokenizers import ByteLevelBPETokenizer
from transformers import PreTrainedTokenizerFast

from modlens.errors import ConfigError, ModelLoadError
from modlens.models.factory import tiny_model
from modlens.models.saving import save_model
from modlens.study import PRESETS, run_study
from modlens.study.family_file import check_family, load_family_file
from modlens.tasks.operations import OPERATIONS, PRIMITIVES
from modlens.tasks.synthetic import SyntheticTask
from modlens.training.pretrain import PretrainConfig, pretrain

TINY = PRESETS["tiny"]
LAYOUT = TINY.family.layout
ENDOFTEXT = "<|endoftext|>"


def text_tokenizer(*, vocab_size: int = 600, specials: tuple[str, ...] = (ENDOFTEXT,)) -> PreTrainedTokenizerFast:
    """A GPT-2-like tokenizer learned on English-ish text that uses the symbols as words."""
    words = [f" {d}" for d in range(10)] + [f" {op}" for op in OPERATIONS] + [" =", " ;"]
    text = ["the answer is" + "".join(words)] * 50 + ["plain text about digits such as 12345, and more"] * 20
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(text, vocab_size=vocab_size, min_frequency=1, special_tokens=list(specials))
    return PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token=specials[0], eos_token=specials[0])


def save_trajectory(root: Path, tokenizer: PreTrainedTokenizerFast, *, steps: tuple[int, ...]) -> list[Path]:
    """A tiny GPT-2 pretrained a few steps on the primitives written in ``tokenizer``'s ids, saved at ``steps``."""
    init = tiny_model(
        "gpt2", tokenizer=tokenizer, n_layers=1, d_model=32, n_heads=4, d_mlp=64, n_ctx=max(32, LAYOUT.seq_len), seed=0
    )
    rendered = LAYOUT.rendered_for(tokenizer)
    primitives = [SyntheticTask((p,), rendered) for p in PRIMITIVES]
    saved: list[Path] = []

    def keep(step: int, model) -> None:
        saved.append(save_model(model, root / f"step{step}", layout=dataclasses.asdict(LAYOUT)))

    config = PretrainConfig(steps=max(steps), checkpoints=steps, batch_size=16, seed=0)
    pretrain(init, primitives, config, on_checkpoint=keep, progress=False)
    return saved


@pytest.fixture(scope="module")
def family_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("text")
    assert len(save_trajectory(root / "ckpts", text_tokenizer(), steps=(5, 20))) == 2
    file = root / "text.toml"
    file.write_text('[[trajectories]]\nname = "gpt2-text"\ncheckpoints = ["ckpts/step5", "ckpts/step20"]\n')
    return file


def test_a_text_tokenizer_family_is_checked_and_its_rendering_recorded(family_file) -> None:
    family = load_family_file(family_file)
    checked = check_family(family, family.study_config(TINY))
    assert [c.step for c in checked.runs[("gpt2-text", 0)]] == [5, 20]
    rendering = checked.as_dict()["rendering"]
    assert rendering["reverse"]["text"] == " reverse" and rendering["0"]["text"] == " 0"
    assert rendering["<bos>"]["text"] == ENDOFTEXT


def test_the_study_runs_on_checkpoints_with_a_text_tokenizer(family_file, tmp_path) -> None:
    result = run_study(TINY, tmp_path / "out", family=load_family_file(family_file), progress=False)
    metrics = result.metrics
    assert set(metrics["step"]) == {5, 20} and set(metrics["corpus"]) == {"gpt2-text"}
    assert metrics[metrics["metric"] == "heldout_composite_accuracy"]["value"].notna().all()
    quality = result.quality
    assert set(quality["task"]) == set(PRIMITIVES) and len(quality) == 2 * len(PRIMITIVES)
    # quality is scored on rendered batches: the pretrained model's loss on them falls with training
    losses = quality.groupby("step")["loss"].mean()
    assert losses[20] < losses[5]


def test_checkpoints_with_different_text_tokenizers_are_refused(family_file, tmp_path) -> None:
    renamed = text_tokenizer(specials=("<|end|>",))  # as many tokens, one spelled otherwise: same architecture
    other = save_trajectory(tmp_path / "other", renamed, steps=(30,))[0]
    body = family_file.read_text().replace('"ckpts/step20"]', f'"ckpts/step20", "{other}"]')
    (family_file.parent / "mixed.toml").write_text(body)
    family = load_family_file(family_file.parent / "mixed.toml")
    with pytest.raises(ModelLoadError, match=r"must share a tokenizer: .*step30's differs") as info:
        check_family(family, family.study_config(TINY))
    assert "\n" not in str(info.value)


def test_a_text_tokenizer_that_cannot_write_the_tasks_is_refused_before_any_unit(tmp_path) -> None:
    few_merges = text_tokenizer(vocab_size=270)
    model = tiny_model("gpt2", tokenizer=few_merges, n_layers=1, d_model=16, n_heads=2, d_mlp=32, n_ctx=32)
    save_model(model, tmp_path / "step10")
    (tmp_path / "f.toml").write_text('[[trajectories]]\ncheckpoints = ["step10"]\n')
    family = load_family_file(tmp_path / "f.toml")
    with pytest.raises(ModelLoadError, match=r"^step10's tokenizer cannot write the study's tasks: cannot render") as e:
        check_family(family, family.study_config(TINY))
    assert "\n" not in str(e.value)
    with pytest.raises(ModelLoadError):
        run_study(TINY, tmp_path / "out", family=family, progress=False)
    assert not (tmp_path / "out" / "metrics.csv").exists()


def write_prompts(path: Path, pairs: list[tuple[str, str]]) -> None:
    path.write_text("".join(json.dumps({"prompt": p, "answer": a}) + "\n" for p, a in pairs))


def test_quality_and_capability_prompt_sets_and_two_methods(family_file, tmp_path) -> None:
    """The file's ``quality`` prompt set is what pretraining quality is measured on, its ``capability`` set is
    scored before and after every fine-tune, and each method is its own unit (the quality rows recorded once)."""
    root = family_file.parent
    write_prompts(root / "heldout.jsonl", [("the answer is", " 1 2"), ("plain text about digits such as", " 12345")])
    write_prompts(root / "facts.jsonl", [("the answer is 0 1", " 2"), ("plain text about", " digits")])
    body = family_file.read_text()
    (root / "prompts.toml").write_text(
        'quality = "heldout.jsonl"\ncapability = "facts.jsonl"\n[study]\nfinetune_methods = ["full", "upper"]\n' + body
    )
    family = load_family_file(root / "prompts.toml")
    result = run_study(TINY, tmp_path / "out", family=family, progress=False)
    metrics, quality = result.metrics, result.quality
    assert set(metrics["method"]) == {"full", "upper"}
    assert len(quality) == 2 * (len(PRIMITIVES) + 1) and "prompts" in set(quality["task"])  # once per checkpoint
    # pretrain_loss is the quality prompt set's answer loss
    prompts = quality[quality["task"] == "prompts"].set_index("step")["loss"]
    by_step = metrics.groupby("step")["pretrain_loss"].agg(["min", "max"])
    assert (by_step["min"] == by_step["max"]).all()
    assert by_step["min"].to_numpy() == pytest.approx(prompts.sort_index().to_numpy(), rel=1e-5)
    names = {"capability_loss_base", "capability_loss", "capability_loss_change", "capability_accuracy"}
    capability = metrics[metrics["metric"].isin(names)]
    assert names <= set(capability["metric"]) and capability["value"].notna().all()
    table = capability.pivot_table(index=["step", "method"], columns="metric", values="value")
    change = table["capability_loss"] - table["capability_loss_base"]
    assert table["capability_loss_change"].to_numpy() == pytest.approx(change.to_numpy())
    # the base's capability loss is the same whichever method then tunes it
    assert table["capability_loss_base"].groupby("step").nunique().eq(1).all()


def test_a_family_file_refuses_proxy_tuning_and_a_missing_prompt_file(family_file) -> None:
    body = family_file.read_text()
    (family_file.parent / "proxy.toml").write_text('[study]\nfinetune_methods = ["full", "proxy"]\n' + body)
    family = load_family_file(family_file.parent / "proxy.toml")
    with pytest.raises(ConfigError, match="proxy-tuning needs a small expert") as info:
        check_family(family, family.study_config(TINY))
    assert "\n" not in str(info.value)
    (family_file.parent / "missing.toml").write_text('capability = "nowhere.jsonl"\n' + body)
    with pytest.raises(ConfigError, match=r"capability prompt file 'nowhere\.jsonl' does not exist"):
        load_family_file(family_file.parent / "missing.toml")


def test_a_prompt_line_longer_than_the_context_is_refused_before_any_unit(family_file, tmp_path) -> None:
    root = family_file.parent
    write_prompts(root / "long.jsonl", [("the answer is" + " 1 2 3" * 20, " 4")])
    (root / "long.toml").write_text('capability = "long.jsonl"\n' + family_file.read_text())
    family = load_family_file(root / "long.toml")
    with pytest.raises(
        ConfigError, match=r"capability prompt file long\.jsonl, in .*step5's tokenizer: example 1 is"
    ) as info:
        run_study(TINY, tmp_path / "out", family=family, progress=False)
    assert "\n" not in str(info.value) and not (tmp_path / "out").exists()
