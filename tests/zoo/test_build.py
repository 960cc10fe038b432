import multiprocessing
import subprocess
import sys
import time
from pathlib import Path

import pytest

from modlens.config import config_from_mapping
from modlens.errors import ConfigError
from modlens.zoo import FamilyConfig, build_family, family_root, members, quality_table

TINY = FamilyConfig(
    depths=(1,),
    d_model=32,
    d_mlp=64,
    seeds=(0, 1),
    label_noise=(0.0, 0.3),
    steps=30,
    checkpoints=(0, 15, 30),
    batch_size=16,
    n_digits=4,
    n_eval=32,
)


def test_family_is_built_with_quality_per_checkpoint(tmp_path) -> None:
    family = build_family(TINY, cache_dir=tmp_path, progress=False)
    assert family.root == family_root(TINY, tmp_path) and family.root.parent == tmp_path
    assert len(family.members) == 4
    for member in family.members:
        for step in TINY.checkpoints:
            assert (family.path(member, step) / "model.safetensors").is_file()
    quality = family.quality()
    assert len(quality) == 4 * 3 * 6  # members x checkpoints x primitives
    table = quality_table(family)
    assert list(table["step"].unique()) == [0, 15, 30]
    assert set(table["label_noise"]) == {0.0, 0.3} and (table["seeds"] == 2).all()
    # step 0 is the random initialisation: clean and noisy corpora share it exactly
    step0 = table[table["step"] == 0]
    assert step0["heldout_loss"].nunique() == 1
    # training lowers held-out loss
    clean = table[table["label_noise"] == 0.0].set_index("step")["heldout_loss"]
    assert clean[30] < clean[0]
    model = family.load(family.members[0], 15)
    assert model.spec.n_layers == 1


def test_second_call_reuses_the_cache(tmp_path) -> None:
    build_family(TINY, cache_dir=tmp_path, progress=False)
    stamp = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("model.safetensors")}
    started = time.perf_counter()
    build_family(TINY, cache_dir=tmp_path, progress=False)
    assert time.perf_counter() - started < 5
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("model.safetensors")} == stamp


def test_interrupted_build_leaves_no_partial_member_and_rerun_completes(tmp_path) -> None:
    """Kill a real build process mid-way, then rerun: no half-written member survives and all get built."""
    config = FamilyConfig(**{**TINY.as_dict(), "steps": 400, "checkpoints": (0, 200, 400)})
    code = (
        "from modlens.zoo import build_family, FamilyConfig;"
        f"build_family(FamilyConfig(**{config.as_dict()!r}), cache_dir={str(tmp_path)!r}, progress=False)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code])
    root = family_root(config, tmp_path)
    deadline = time.time() + 120
    while time.time() < deadline:  # wait until the first checkpoint of the first member is being written
        if list(root.glob(".*.tmp*/step*")) if root.exists() else []:
            break
        time.sleep(0.2)
    proc.kill()
    proc.wait()
    done = [m for m in members(config) if (root / m.name).is_dir()]
    assert len(done) < len(members(config)), "the build finished before it could be interrupted"
    for m in done:  # whatever was renamed into place is complete
        assert all((root / m.name / f"step{s:06d}").is_dir() for s in config.checkpoints)
    family = build_family(config, cache_dir=tmp_path, progress=False)
    assert not list(root.glob(".*.tmp*"))
    assert len(family.quality()) == len(members(config)) * 3 * 6


def test_family_config_rejects_unknown_keys_and_bad_values() -> None:
    with pytest.raises(ConfigError, match="unknown config key 'layers'; valid keys: architecture, base"):
        config_from_mapping(FamilyConfig, {"layers": 3})
    with pytest.raises(ConfigError, match="checkpoints"):
        FamilyConfig(steps=10, checkpoints=(0, 20))
    with pytest.raises(ConfigError, match="steps must be int"):
        config_from_mapping(FamilyConfig, {"steps": "many"})


def test_cache_key_changes_with_config() -> None:
    assert TINY.key() != FamilyConfig(**{**TINY.as_dict(), "seeds": (0,)}).key()
    assert TINY.key() == FamilyConfig(**TINY.as_dict()).key()


RACE = FamilyConfig(**{**TINY.as_dict(), "seeds": (0,), "label_noise": (0.0,), "steps": 120, "checkpoints": (0, 120)})


def _build_after(barrier, root: str, out) -> None:
    """One of two processes building the same member at the same moment; reports the member directory's inode."""
    from modlens.zoo import build_member

    member = members(RACE)[0]
    barrier.wait()
    path = build_member(RACE, member, Path(root), progress=False)
    out.put(path.stat().st_ino)


def test_two_processes_building_one_member_share_it(tmp_path) -> None:
    """The member lock: the second process waits for the first and reuses its build; no staging is lost."""
    ctx = multiprocessing.get_context("spawn")
    barrier, out = ctx.Barrier(2), ctx.Queue()
    workers = [ctx.Process(target=_build_after, args=(barrier, str(tmp_path), out)) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=300)
    assert [w.exitcode for w in workers] == [0, 0]
    inodes = {out.get(timeout=5), out.get(timeout=5)}
    member = members(RACE)[0]
    assert inodes == {(tmp_path / member.name).stat().st_ino}  # built once, never replaced under the other
    assert all((tmp_path / member.name / f"step{s:06d}" / "model.safetensors").is_file() for s in RACE.checkpoints)
    assert not list(tmp_path.glob(".*.tmp*"))


def test_a_corpus_without_its_composites_is_refused_before_building(tmp_path) -> None:
    config = FamilyConfig(**{**TINY.as_dict(), "composite_fraction": (0.0, 0.2)})
    with pytest.raises(ConfigError, match="composite_fraction > 0 needs pretrain_composites"):
        build_family(config, cache_dir=tmp_path, progress=False)
    assert not list(tmp_path.iterdir())
