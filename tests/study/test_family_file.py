"""Family files: parsing, the one-line refusals before any unit runs, and equivalence with the built-in study."""

import dataclasses
from pathlib import Path

import pandas as pd
import pytest
import torch

from modlens.cli import main
from modlens.errors import ConfigError, ModelLoadError
from modlens.models.factory import tiny_model
from modlens.models.saving import save_model
from modlens.study import PRESETS, run_study
from modlens.study.family_file import FILE_KEYS, check_family, load_family_file, parse_family
from modlens.study.pipeline import MODELS_DIR

TINY = dataclasses.replace(PRESETS["tiny"], family=dataclasses.replace(PRESETS["tiny"].family, seeds=(0,)))
# Pretrained long enough, with a low target, that the step-400 fine-tune reaches it: the mechanistic metrics
# (masks, reuse, drift per layer) run and are compared too, not only the behavioural ones.
REACHING = dataclasses.replace(
    TINY,
    family=dataclasses.replace(TINY.family, steps=400, checkpoints=(0, 400), d_model=64, d_mlp=128, n_digits=3),
    finetune=dataclasses.replace(TINY.finetune, max_steps=100, fixed_steps=5, eval_every=5, target_accuracy=0.05),
    lr_grid=(3e-3,),
    n_heldout_composites=3,
)
KEYS = ["seed", "step", "metric", "subroutine"]


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def run_builtin(study, tmp_path_factory):
    out = tmp_path_factory.mktemp("builtin")
    return run_study(study, out, progress=False), out / MODELS_DIR / "L1-seed0-noise0.00"


@pytest.fixture(scope="module")
def builtin(tmp_path_factory):
    """The built-in tiny study (one seed): its tables and its pretrained checkpoint directories."""
    return run_builtin(TINY, tmp_path_factory)


def synthetic_model(architecture: str, *, seed: int = 0, n_layers: int = 1, d_model: int = 32):
    layout = TINY.family.layout
    return tiny_model(
        architecture,
        tokenizer=layout.vocab.tokenizer(),
        n_layers=n_layers,
        d_model=d_model,
        n_heads=4,
        d_mlp=64,
        n_ctx=max(32, layout.seq_len),
        seed=seed,
    )


@pytest.mark.parametrize("study", [TINY, REACHING], ids=["tiny", "reaching-target"])
def test_the_family_files_checkpoints_give_the_builtin_studys_metrics(study, tmp_path, tmp_path_factory) -> None:
    result, member = run_builtin(study, tmp_path_factory)
    last = max(study.family.checkpoints)
    file = write(
        tmp_path / "family.toml",
        f"""
[[trajectories]]
name = "primitives"
seed = 0
checkpoints = [{{ source = "{member / "step000000"}" }}, {{ source = "{member / f"step{last:06d}"}" }}]
""",
    )
    ours = run_study(study, tmp_path / "out", family=load_family_file(file), progress=False)
    theirs = result.metrics
    assert len(ours.metrics) == len(theirs) > 0
    merged = theirs.merge(ours.metrics, on=KEYS, suffixes=("_builtin", "_family"), validate="one_to_one")
    assert len(merged) == len(theirs)
    for column in ("value", "pretrain_loss", "pretrain_accuracy"):
        a = torch.tensor(merged[f"{column}_builtin"].to_numpy())
        b = torch.tensor(merged[f"{column}_family"].to_numpy())
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, equal_nan=True)  # float64 rows of float32 models
    assert set(ours.metrics["corpus"]) == {"primitives"} and "label_noise" not in ours.metrics
    quality_keys = ["seed", "step", "task"]
    q = result.quality.merge(ours.quality, on=quality_keys, suffixes=("_builtin", "_family"), validate="one_to_one")
    assert len(q) == len(result.quality) > 0
    pd.testing.assert_series_equal(q["loss_builtin"], q["loss_family"], check_names=False, rtol=1e-5)
    for table in ("drift_layers", "mask_layers"):
        a, b = getattr(result, table), getattr(ours, table)
        assert len(a) == len(b)
        if len(a):
            values = [c for c in a.columns if c not in ("label_noise", "corpus") and pd.api.types.is_float_dtype(a[c])]
            pd.testing.assert_frame_equal(a[values], b[values], rtol=1e-5)
    if study is REACHING:  # the mechanistic path ran and was compared
        reached = theirs[(theirs["metric"] == "reached_target") & (theirs["value"] == 1)]
        assert len(reached) >= 1
        assert theirs[theirs["metric"] == "mask_density"]["value"].notna().any()
        assert len(result.drift_layers) > 0


def test_a_wrong_key_names_the_valid_ones(tmp_path) -> None:
    with pytest.raises(
        ConfigError, match=r"unknown family file key 'trajectory'; valid keys: capability, control,"
    ) as info:
        parse_family({"trajectory": []}, base_dir=tmp_path)
    assert str(info.value).endswith(", ".join(FILE_KEYS))
    bad = {"trajectories": [{"name": "a", "checkpoints": [{"source": "x", "revison": "step1"}]}]}
    with pytest.raises(ConfigError, match=r"unknown config key 'trajectories.0.checkpoints.0.revison'.*revision"):
        parse_family(bad, base_dir=tmp_path)
    with pytest.raises(ConfigError, match=r"unknown config key 'study.n_evals'"):
        parse_family(
            {"study": {"n_evals": 3}, "trajectories": [{"checkpoints": ["x"]}]}, base_dir=tmp_path
        ).study_config(TINY)


def refusal(tmp_path: Path, body: str, error: type[Exception]) -> str:
    family = load_family_file(write(tmp_path / "f.toml", body))
    with pytest.raises(error) as info:
        run_study(TINY, tmp_path / "out", family=family, progress=False)
    line = str(info.value)
    assert "\n" not in line
    assert not (tmp_path / "out").exists()  # refused before any unit ran (no store was opened)
    return line


def test_a_missing_directory_is_refused_in_one_line(tmp_path) -> None:
    line = refusal(tmp_path, '[[trajectories]]\ncheckpoints = ["./runs/step100"]\n', ConfigError)
    assert "model path './runs/step100' does not exist" in line


def test_a_revision_not_in_the_offline_cache_is_refused_without_the_network(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hub"))  # an empty cache
    body = '[[trajectories]]\ncheckpoints = [{ source = "EleutherAI/pythia-160m", revision = "step1000" }]\n'
    line = refusal(tmp_path, body, ConfigError)
    assert "EleutherAI/pythia-160m@step1000" in line and "HF_HUB_OFFLINE" in line


def test_checkpoints_of_different_architectures_are_refused(tmp_path) -> None:
    save_model(synthetic_model("gpt_neox"), tmp_path / "a" / "step10")
    save_model(synthetic_model("llama"), tmp_path / "a" / "step20")
    line = refusal(tmp_path, '[[trajectories]]\ncheckpoints = ["a/step10", "a/step20"]\n', ModelLoadError)
    assert "share an architecture" in line and "GPTNeoXForCausalLM" in line and "LlamaForCausalLM" in line


def test_a_tokenizer_mismatch_is_refused(tmp_path) -> None:
    save_model(synthetic_model("gpt_neox"), tmp_path / "a" / "step10")
    other = synthetic_model("gpt_neox")
    assert other.tokenizer is not None
    other.tokenizer.add_tokens(["<extra>"])
    save_model(other, tmp_path / "a" / "step20")
    line = refusal(tmp_path, '[[trajectories]]\ncheckpoints = ["a/step10", "a/step20"]\n', ModelLoadError)
    assert "share a tokenizer" in line


def test_steps_out_of_order_and_a_non_synthetic_vocabulary_are_refused(tmp_path) -> None:
    save_model(synthetic_model("gpt_neox"), tmp_path / "a" / "step10")
    save_model(synthetic_model("gpt_neox", seed=1), tmp_path / "a" / "step20")
    line = refusal(tmp_path, '[[trajectories]]\ncheckpoints = ["a/step20", "a/step10"]\n', ConfigError)
    assert "training order" in line


def test_control_and_seeds_and_heldout(tmp_path) -> None:
    save_model(synthetic_model("gpt_neox"), tmp_path / "s0" / "step10")
    save_model(synthetic_model("gpt_neox", seed=1), tmp_path / "s1" / "step10")
    body = """
heldout = ["increment.reverse", "rotate∘swap"]
control = true
[[trajectories]]
name = "r"
checkpoints = ["s0/step10"]
[[trajectories]]
name = "r"
checkpoints = ["s1/step10"]
"""
    family = load_family_file(write(tmp_path / "f.toml", body))
    study = family.study_config(TINY)
    assert study.task_split().heldout == ("increment∘reverse", "rotate∘swap")
    checked = check_family(family, study)
    assert list(checked.runs) == [("r", 0), ("r", 1)]
    assert [(c.step, c.control) for c in checked.runs[("r", 1)]] == [(0, True), (10, False)]


def family_of_builtin(member: Path, path: Path, *, control: bool = False) -> Path:
    points = ", ".join(f'{{ source = "{member / step}" }}' for step in ("step000000", "step000020"))
    body = (
        f'control = {str(control).lower()}\n[[trajectories]]\nname = "primitives"\nseed = 0\ncheckpoints = [{points}]\n'
    )
    return write(path, body)


def test_plan_states_units_time_memory_and_an_executor_and_runs_nothing(builtin, tmp_path, capsys) -> None:
    _, member = builtin
    file = family_of_builtin(member, tmp_path / "family.toml")
    assert main(["study", "--preset", "tiny", "--family", str(file), "--plan", "--out", str(tmp_path / "o")]) == 0
    printed = capsys.readouterr().out
    lines = printed.splitlines()
    assert lines[0].startswith("2 units; probe: 5 fine-tuning steps of ")
    assert sum(line.startswith("family/primitives/seed0/step0000") for line in lines) == 2
    assert "total at most" in printed and "recommended executor: " in printed
    assert any(unit in printed for unit in (" KB ", " MB ", " KiB ", " MiB ", "MB", "KB"))
    assert not (tmp_path / "o").exists()


def test_plan_needs_a_family_file(capsys) -> None:
    assert main(["study", "--preset", "tiny", "--plan"]) == 2
    assert "--plan states the costs of a family file's study" in capsys.readouterr().err


def test_a_tokenizer_that_is_not_the_synthetic_vocabulary_gets_the_tasks_rendered(tmp_path) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    ids = dict(TINY.family.layout.vocab.ids)
    shuffled = dict(zip(ids, reversed(list(ids.values())), strict=True))  # same tokens, other ids
    tk = Tokenizer(models.WordLevel(vocab=shuffled, unk_token=next(iter(ids))))
    tk.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    model = synthetic_model("gpt_neox")
    save_model(dataclasses.replace(model, tokenizer=PreTrainedTokenizerFast(tokenizer_object=tk)), tmp_path / "step10")
    family = load_family_file(write(tmp_path / "f.toml", '[[trajectories]]\ncheckpoints = ["step10"]\n'))
    rendering = check_family(family, TINY).as_dict()["rendering"]
    assert {symbol: entry["id"] for symbol, entry in rendering.items()} == shuffled


def test_a_vocabulary_smaller_than_the_rendered_ids_is_refused(tmp_path) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    ids = {token: i + 100 for token, i in TINY.family.layout.vocab.ids.items()}  # ids past the model's 23
    tk = Tokenizer(models.WordLevel(vocab=ids, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    model = synthetic_model("gpt_neox")
    save_model(dataclasses.replace(model, tokenizer=PreTrainedTokenizerFast(tokenizer_object=tk)), tmp_path / "step10")
    line = refusal(tmp_path, '[[trajectories]]\ncheckpoints = ["step10"]\n', ModelLoadError)
    assert (
        line
        == f"step10 has a vocabulary of {model.spec.d_vocab} tokens; the tasks written in its tokenizer's ids need 123"
    )


def test_the_pythia_example_parses_and_is_refused_offline_in_one_line(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hub"))  # an empty cache
    family = load_family_file(Path(__file__).parents[2] / "examples" / "pythia_family.toml")
    assert [t.name for t in family.trajectories] == ["pythia-160m", "pythia-160m-deduped"]
    assert family.trajectories[0].checkpoints[-1].revision == "step143000"
    assert family.quality is not None and family.quality.endswith("heldout_text.jsonl")
    assert family.capability is not None and family.capability.endswith("capability_facts.jsonl")
    study = family.study_config(PRESETS["quick"])
    assert study.finetune_methods == ("full", "upper", "lora", "svf")
    with pytest.raises(ConfigError, match=r"^EleutherAI/pythia-160m@step0: .*HF_HUB_OFFLINE is set") as info:
        check_family(family, study)
    assert "\n" not in str(info.value)


def test_set_overrides_the_family_files_study_keys(builtin, tmp_path, monkeypatch, capsys) -> None:
    _, member = builtin
    file = family_of_builtin(member, tmp_path / "family.toml")
    file.write_text('heldout = ["increment∘reverse", "rotate∘swap"]\n' + file.read_text() + "[study]\nn_eval = 16\n")
    seen = []

    class Plan:
        def text(self) -> str:
            return "planned"

    def fake_plan(study, family):
        seen.append(study)
        return Plan()

    monkeypatch.setattr("modlens.study.plan.plan_study", fake_plan)
    args = ["study", "--preset", "tiny", "--family", str(file), "--plan"]
    assert main([*args, "--set", "n_eval=24"]) == 0 and main(args) == 0
    assert [s.n_eval for s in seen] == [24, 16]
    assert all(s.task_split().heldout == ("increment∘reverse", "rotate∘swap") for s in seen)
