"""Running sweeps: the example grid's units, tidy rows, and identical results on every executor."""

import warnings

import pandas as pd
import pytest

from modlens.store import Store
from modlens.sweep import expand, load_sweep, run_sweep
from modlens.sweep.grid import COORDINATES
from tests.sweep.conftest import FAST


@pytest.fixture(scope="module")
def spec(sweep_dir):
    return load_sweep(sweep_dir / "sweep.toml", FAST)


def _run(spec, out, executor):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # random models score at chance; fit_mask says so
        return run_sweep(spec, str(out), executor=executor, progress=False)


def test_example_expands_to_the_full_grid_with_unique_keys(spec):
    units = expand(spec)
    # ablation 2 models x 2 tasks x 2 replacements x 1 seed, mask 2 x 2 x 1 x 2,
    # drift 1 weights + 1 pair x 1 task x 1 seed
    assert len(units) == 8 + 8 + 2
    assert len({u.key for u in units}) == len(units)
    first = units[0]
    assert first.key == "job=heads|analysis=ablation|model=models/base|task=reverse|replacement=mean|seed=0"
    assert first.kwargs["n_examples"] == 8 and first.meta["unit"]["components"] == ["heads"]


def test_rows_are_tidy_and_led_by_the_coordinates(spec, tmp_path):
    frame = _run(spec, tmp_path / "out", "local")
    assert list(frame.columns[: len(COORDINATES) + 1]) == ["unit", *COORDINATES]
    assert frame["unit"].nunique() == 18
    masks = frame[frame["analysis"] == "mask"]
    assert len(masks) == 8 and masks["n_units"].eq(2 * 4 + 2 * 128).all()  # 2 layers x (4 heads + d_mlp 128)
    assert masks["density"].between(0, 1).all()
    ablation = frame[frame["analysis"] == "ablation"]
    assert ablation.groupby("unit").size().eq(8).all()  # 2 layers x 4 heads
    assert set(ablation["component"]) == {f"L{layer}H{h}" for layer in range(2) for h in range(4)}
    drift = frame[frame["analysis"].isin(["weight_drift", "activation_drift"])]
    assert set(drift["table"]) == {"weights", "weights_summary", "activations", "activations_summary"}
    assert drift["base"].eq("models/base").all() and drift["model"].eq("models/tuned").all()
    summary = drift[(drift["table"] == "weights_summary") & (drift["measure"] == "rel_change")]
    assert summary["upper_share"].iloc[0] > 0.5  # the planted change sits in layer 1 of 2


@pytest.mark.slow
def test_local_processes_and_dask_cluster_give_identical_frames(spec, tmp_path):
    from distributed import LocalCluster

    local = _run(spec, tmp_path / "local", "local")
    pooled = _run(spec, tmp_path / "processes", "processes:2")
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
        address = cluster.scheduler_address.removeprefix("tcp://")
        on_dask = _run(spec, tmp_path / "dask", f"dask://{address}")
    pd.testing.assert_frame_equal(pooled, local)
    pd.testing.assert_frame_equal(on_dask, local)
    for name, spec_ in [("processes", "processes:2"), ("dask", f"dask://{address}")]:
        assert {r["meta"]["provenance"]["executor"] for r in Store.read(tmp_path / name).records()} == {spec_}
