"""The study's nested config: presets pinned to the numbers they had as flat configs, nested keys in files and --set."""

import dataclasses
import json

import pytest

from modlens.config import load_config
from modlens.errors import ConfigError
from modlens.study import PRESETS, StudyConfig
from modlens.study.finetuning import finetune_config

# The family each preset pretrains: the cache key hashes every pretraining setting, so an equal key means the same
# models (these are the keys the presets had before the config was nested).
FAMILY_KEYS = {"quick": "5eed19d0728c", "full": "0592ada03569", "large": "83b2b9a5e5d4", "tiny": "76f0bb6662c1"}


@pytest.mark.parametrize("name", sorted(FAMILY_KEYS))
def test_presets_pretrain_the_same_families_and_round_trip(name: str) -> None:
    study = PRESETS[name]
    assert study.family.key() == FAMILY_KEYS[name]
    assert StudyConfig.from_dict(json.loads(json.dumps(study.as_dict()))) == study


def test_the_fine_tuning_config_is_the_studys_at_each_rate() -> None:
    tiny = PRESETS["tiny"]
    config = finetune_config(tiny, 1e-3, 10, 5)
    assert dataclasses.asdict(config) == {
        "max_steps": 10,
        "target_accuracy": 0.9,
        "eval_every": 5,
        "batch_size": 16,
        "lr": 1e-3,
        "warmup": 20,
        "replay_fraction": 0.3,
        "n_val": 32,
        "seed": 0,
        "fixed_steps": 5,
    }


def test_nested_keys_in_files_and_overrides(tmp_path) -> None:
    file = tmp_path / "study.toml"
    file.write_text("lr_grid = [0.01]\n[family]\nseeds = [4]\n[masks]\nsteps = 9\n")
    study = load_config(StudyConfig, path=file, overrides=["finetune.max_steps=12"], base=PRESETS["tiny"])
    assert (study.lr_grid, study.family.seeds, study.masks.steps, study.finetune.max_steps) == ((0.01,), (4,), 9, 12)
    assert study.family.d_model == PRESETS["tiny"].family.d_model  # the preset's other family keys stay


def test_the_study_names_the_composites_its_corpus_mixes_in() -> None:
    mixed = load_config(StudyConfig, overrides=["family.composite_fraction=0.0,0.2"], base=PRESETS["tiny"])
    assert mixed.family.pretrain_composites == tuple(mixed.task_split().finetune[: mixed.n_pretrain_composites])
    plain = load_config(StudyConfig, overrides=["family.composite_fraction=0.0"], base=mixed)
    assert plain.family.pretrain_composites == ()


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("finetune.lr=0.1", "finetune.lr is not used"),
        ("finetune.fixed_steps=none", "finetune.fixed_steps must be set"),
        ("family.pretrain_composites=sort∘rotate", "set n_pretrain_composites instead"),
        ("masks.faithful_random_draws=2", "masks.faithful_random_draws must be at least 5"),
        ("mask_steps=3", "did you mean masks.steps?"),
    ],
)
def test_wrong_nested_settings_are_one_line(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as err:
        load_config(StudyConfig, overrides=[override], base=PRESETS["tiny"])
    assert "\n" not in str(err.value)
