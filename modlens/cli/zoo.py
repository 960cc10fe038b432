"""``modlens zoo``: build (or reuse) the embedded model family and print its pretraining-quality table."""

import argparse
import time

import pandas as pd

from modlens.config import load_config
from modlens.zoo import FamilyConfig, build_family, quality_table


def build_and_report(args: argparse.Namespace, base: FamilyConfig | None = None) -> pd.DataFrame:
    """Builds the family the arguments describe, prints where it is, how long it took, and its quality table."""
    config = load_config(FamilyConfig, path=args.config, overrides=args.overrides, base=base)
    started = time.perf_counter()
    family = build_family(config, cache_dir=args.cache_dir, progress=not args.no_progress)
    elapsed = time.perf_counter() - started
    table = quality_table(family)
    n = len(family.members)
    print(f"family {config.key()} at {family.root}: {n} pretraining runs x {len(config.checkpoints)} checkpoints")
    print(f"ready in {elapsed:.1f} s (finished runs are reused from the cache)")
    print("pretraining quality on held-out primitives (mean over seeds; step 0 = random-init control):")
    print(format_table(table))
    return table


def format_table(table: pd.DataFrame) -> str:
    shown = table.copy()
    for col in ("heldout_loss", "heldout_loss_sd"):
        shown[col] = shown[col].map(lambda v: f"{v:.4f}")
    for col in ("token_accuracy", "answer_accuracy", "answer_accuracy_sd"):
        shown[col] = shown[col].map(lambda v: f"{v:.3f}")
    return shown.to_string(index=False)


def run(args: argparse.Namespace) -> int:
    build_and_report(args)
    return 0
