"""Per-unit cost of a study store: counts, mean/min/max wall and CPU seconds by phase, depth and step.

Reads only the records' provenance, so it sizes a long run (e.g. the large preset) from the units it has
finished, on any machine, while the run continues.

    python benchmarks/unit_costs.py results/large [more stores ...] --json benchmarks/results/large_unit_costs.json
"""

import argparse
import json
from pathlib import Path

import pandas as pd


def unit_table(root: Path) -> pd.DataFrame:
    from modlens.store import Store

    rows = []
    for record in Store.read(root).records():
        meta, where = record["meta"], record["meta"]["provenance"]
        member = str(meta.get("member", ""))
        rows.append(
            {
                "store": str(root),
                "phase": meta.get("phase"),
                "depth": int(member.split("-")[0].lstrip("L")) if member.startswith("L") else None,
                "step": meta.get("step"),
                "seconds": where.get("seconds"),
                "cpu_seconds": where.get("cpu_seconds"),
            }
        )
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stores", type=Path, nargs="+")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    table = pd.concat([unit_table(root) for root in args.stores], ignore_index=True)
    keys = ["store", "phase", "depth", "step"]
    summary = (
        table.fillna({"step": -1})
        .groupby(keys)[["seconds", "cpu_seconds"]]
        .agg(["count", "mean", "min", "max"])
        .round(1)
    )
    summary.columns = [f"{value}_{stat}" for value, stat in summary.columns]
    summary = summary.reset_index()
    print(summary.to_string(index=False))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"units": summary.to_dict("records")}, indent=2))


if __name__ == "__main__":
    main()
