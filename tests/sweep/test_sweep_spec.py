"""Sweep files: the whole file validated up front; every bad input is one ConfigError naming what is wrong."""

import tomllib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modlens.errors import ConfigError, ModlensError
from modlens.resolve import ModelRef
from modlens.sweep import AblationJob, DriftJob, MaskJob, load_sweep, parse_sweep


def _example(sweep_dir: Path) -> dict:
    return tomllib.loads((sweep_dir / "sweep.toml").read_text())


def _parse(sweep_dir: Path, data: dict, *overrides: str):
    return parse_sweep(data, base_dir=sweep_dir, overrides=overrides, where="sweep.toml")


def test_example_resolves_paths_against_the_file(sweep_dir):
    spec = load_sweep(sweep_dir / "sweep.toml")
    assert spec.out == str(sweep_dir / "results/sweep")
    heads, masks, drift = spec.jobs
    assert isinstance(heads, AblationJob) and isinstance(masks, MaskJob) and isinstance(drift, DriftJob)
    assert heads.models[0].source == str((sweep_dir / "models/base").resolve())
    assert heads.models[0].label == "models/base"
    assert [t.name for t in heads.tasks] == ["reverse", "increment∘reverse"]
    assert heads.components == ("heads",) and masks.seeds == (0, 1)
    assert drift.pairs[0][1].label == "models/tuned"
    config = spec.config()
    assert "out" not in config and "executor" not in config  # where and how it runs do not change results


def test_overrides_reach_top_level_every_job_and_one_job(sweep_dir):
    spec = load_sweep(sweep_dir / "sweep.toml", ["steps=3", "seeds=0,1,2", "jobs.0.replacements=resample", "out=/x"])
    heads, masks, drift = spec.jobs
    assert masks.steps == 3 and heads.seeds == masks.seeds == drift.seeds == (0, 1, 2)
    assert heads.replacements == ("resample",) and spec.out == "/x"


def test_hub_ids_and_revisions_are_kept_for_load_time(sweep_dir):
    data = _example(sweep_dir)
    data["jobs"][0]["models"] = [{"source": "EleutherAI/pythia-70m", "revision": "step1000"}]
    ref = _parse(sweep_dir, data).jobs[0].models[0]
    assert (ref.source, ref.revision, ref.label) == (
        "EleutherAI/pythia-70m",
        "step1000",
        "EleutherAI/pythia-70m@step1000",
    )


def _bad(sweep_dir, change, *overrides) -> str:
    data = _example(sweep_dir)
    change(data)
    with pytest.raises(ConfigError) as err:
        _parse(sweep_dir, data, *overrides)
    assert "\n" not in str(err.value)
    return str(err.value)


def test_unknown_top_level_key_names_it_and_the_valid_ones(sweep_dir):
    message = _bad(sweep_dir, lambda d: d.update(outdir="x"))
    assert "'outdir'" in message and "valid keys: out, executor, device, dtype, jobs" in message


def test_unknown_job_key_names_job_key_and_valid_keys(sweep_dir):
    message = _bad(sweep_dir, lambda d: d["jobs"][1].update(step=3))
    assert message.startswith("sweep.toml: jobs[1] (mask): unknown config key 'step'; valid keys: ")
    assert "steps" in message and "sparsity" in message


@pytest.mark.parametrize(
    ("job", "key", "value", "expected"),
    [
        (1, "steps", "many", "steps must be int"),
        (1, "steps", 2.5, "steps must be int"),
        (1, "steps", [3], "steps must be a single value"),
        (0, "seeds", "zero", "seeds must be int"),
        (1, "sparsity", 1.5, "sparsity must be in (0, 1)"),
        (1, "granularity", "layer", "granularity must be one of"),
        (0, "models", {"source": "x"}, "models must be a list"),
        (0, "models", [3], "a model is a path"),
        (0, "models", [{"src": "x"}], "unknown model key 'src'"),
        (0, "tasks", ["reverse", 7], "a task is a synthetic task name"),
        (0, "tasks", ["revrse"], "unknown operation 'revrse'"),
        (0, "tasks", [{"prompts": "missing.jsonl"}], "prompts file 'missing.jsonl' does not exist"),
        (0, "replacements", ["mean", "shuffle"], "unknown replacements entry 'shuffle'; valid: zero, mean, resample"),
        (0, "components", ["L0H1", "bogus"], "bogus"),
        (0, "metric", "f1", "unknown metric entry 'f1'"),
        (2, "measures", ["cka"], "unknown measures entry 'cka'"),
        (2, "pairs", [["models/base"]], "a pair is [base, tuned]"),
        (0, "kind", "probe", "unknown kind 'probe'; valid kinds: ablation, mask, drift"),
        (0, "n_examples", 0, "n_examples must be positive"),
        (0, "seeds", [], "seeds must list at least one seed"),
    ],
)
def test_wrong_values_are_named(sweep_dir, job, key, value, expected):
    message = _bad(sweep_dir, lambda d: d["jobs"][job].update({key: value}))
    assert expected in message and f"jobs[{job}]" in message


def test_missing_model_paths_are_found_before_any_work(sweep_dir):
    message = _bad(sweep_dir, lambda d: d["jobs"][1].update(models=["models/base", "./models/gone"]))
    assert "model path './models/gone' does not exist" in message
    message = _bad(sweep_dir, lambda d: d["jobs"][2].update(pairs=[["models/base", "/no/such/dir"]]))
    assert "'/no/such/dir' does not exist" in message
    (sweep_dir / "not_a_model").mkdir(exist_ok=True)
    assert "holds no model" in _bad(sweep_dir, lambda d: d["jobs"][0].update(models=["not_a_model"]))


def test_structure_errors(sweep_dir):
    assert "[[jobs]]" in _bad(sweep_dir, lambda d: d.pop("jobs"))
    assert "jobs[0] has no kind" in _bad(sweep_dir, lambda d: d["jobs"][0].pop("kind"))
    assert "used twice" in _bad(sweep_dir, lambda d: d["jobs"][1].update(name="heads"))
    assert "no job has this key" in _bad(sweep_dir, lambda d: None, "stepz=3")
    assert "jobs.N.KEY" in _bad(sweep_dir, lambda d: None, "jobs.9.steps=3")
    assert "write key=value" in _bad(sweep_dir, lambda d: None, "steps")


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_sweep(tmp_path / "none.toml")
    (tmp_path / "bad.toml").write_text("[[jobs]\nkind=")
    with pytest.raises(ConfigError, match="malformed TOML"):
        load_sweep(tmp_path / "bad.toml")


_values = st.recursive(  # what TOML can hold (it has no null)
    st.booleans() | st.integers(-3, 3) | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)
_keys = st.sampled_from(
    ["kind", "models", "tasks", "replacements", "seeds", "steps", "pairs", "name", "x", "components"]
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(job=st.dictionaries(_keys, _values, max_size=5), kind=st.sampled_from(["ablation", "mask", "drift", None]))
def test_arbitrary_jobs_fail_only_with_modlens_errors(sweep_dir, job, kind):
    if kind is not None:
        job = {**job, "kind": kind}
    try:
        _parse(sweep_dir, {"jobs": [job]})
    except ModlensError as err:
        assert "\n" not in str(err)


def test_dtype_reaches_every_model_and_the_fingerprint_only_when_not_float32(sweep_dir):
    from modlens.sweep.grid import expand

    default = load_sweep(sweep_dir / "sweep.toml")
    half = load_sweep(sweep_dir / "sweep.toml", ["dtype=bfloat16"])
    assert "dtype" not in default.config() and half.config()["dtype"] == "bfloat16"
    units = expand(half)
    assert units and all(isinstance(u.kwargs.get("model") or u.kwargs["tuned"], ModelRef) for u in units)
    assert all(u.kwargs["dtype"] == "bfloat16" for u in units)
    assert all("dtype" not in u.kwargs for u in expand(default))
    with pytest.raises(ConfigError, match="unknown dtype 'float8'; choose one of float32, bfloat16, float16"):
        load_sweep(sweep_dir / "sweep.toml", ["dtype=float8"])
