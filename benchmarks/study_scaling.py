"""Wall time of the study on one machine: in-process vs Dask LocalClusters of 1 and 2 worker processes.

Each case runs the same preset into a fresh store and the script checks the cases' results are identical.

    python benchmarks/study_scaling.py --preset quick --workers 1 2 --json results/study_scaling.json

``--reference DIR`` adds an existing store of the same preset (e.g. ``./run study``'s results/quick) to the
identity check, so ``--no-local`` can reuse a run made separately. Each case also reports the sum of its
units' CPU seconds (recorded per unit), which barely moves when other jobs share the machine. ``--keep DIR``
keeps each case's store in ``DIR/<case>`` (e.g. to build its report with ``modlens report``).
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

import pandas as pd


def run_case(preset: str, executor: str, out: Path) -> tuple[float, pd.DataFrame]:
    from modlens.study import PRESETS, run_study

    started = time.perf_counter()
    result = run_study(PRESETS[preset], out, executor=executor, progress=False)
    return time.perf_counter() - started, result.metrics


def unit_cpu_seconds(out: Path) -> float:
    from modlens.store import Store

    return sum(float(r["meta"]["provenance"].get("cpu_seconds", "nan")) for r in Store.read(out).records())


def reference_metrics(root: Path, preset: str) -> pd.DataFrame:
    from modlens.store import Store, fingerprint
    from modlens.study import PRESETS, split_tables

    store = Store.read(root)
    if store.manifest.get("fingerprint") != fingerprint(PRESETS[preset].as_dict()):
        raise SystemExit(f"{root} holds a different study than the {preset!r} preset")
    return split_tables(store.frame()).metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--workers", type=int, nargs="*", default=[1, 2], help="Dask worker processes per case")
    parser.add_argument("--no-local", action="store_true", help="skip the in-process case")
    parser.add_argument("--reference", type=Path, default=None, help="a store of the same preset to compare with")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--keep", type=Path, default=None, metavar="DIR", help="keep the stores in DIR/<case>")
    args = parser.parse_args()
    from distributed import LocalCluster

    figures: dict[str, dict[str, float]] = {}
    frames = {}
    with tempfile.TemporaryDirectory() as tmp:
        cases = [] if args.no_local else [("local", None)]
        cases += [(f"dask-{n}", n) for n in args.workers]
        for name, workers in cases:
            out = (args.keep or Path(tmp)) / name
            if workers is None:
                seconds, frames[name] = run_case(args.preset, "local", out)
            else:
                with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True) as cluster:
                    seconds, frames[name] = run_case(
                        args.preset, "dask://" + cluster.scheduler_address.split("://")[-1], out
                    )
            figures[name] = {"seconds": round(seconds, 1), "unit_cpu_seconds": round(unit_cpu_seconds(out), 1)}
            print(f"{name}: {seconds:.1f} s", flush=True)
    if args.reference is not None:
        frames["reference"] = reference_metrics(args.reference, args.preset)
    first = next(iter(frames.values()))
    columns = [c for c in first.columns if c != "unit"]
    keys = ["unit", "metric", "subroutine"]
    identical = all(
        f.sort_values(keys)[columns]
        .reset_index(drop=True)
        .equals(first.sort_values(keys)[columns].reset_index(drop=True))
        for f in frames.values()
    )
    base = figures.get("local", figures.get("dask-1", {})).get("seconds")
    for fig in figures.values():
        fig["speedup"] = round(base / fig["seconds"], 2) if base else float("nan")
    report = {"preset": args.preset, "cases": figures, "identical_results": identical}
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
