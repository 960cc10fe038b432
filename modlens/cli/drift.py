"""``modlens drift``: where fine-tuning changed a model: weight, spectral and activation drift, as CSV + HTML."""

import argparse
from pathlib import Path

import pandas as pd

from modlens.cli.common import batch_from_args, model_from_args
from modlens.drift import (
    MEASURES,
    activation_drift_by_layer,
    check_tokenizers,
    run_activation_drift,
    run_weight_drift,
    summarize_activation_drift,
    summarize_weight_drift,
    weight_drift_by_layer,
)
from modlens.errors import ConfigError
from modlens.models import check_pair
from modlens.outputs import check_out_dir, write_outputs
from modlens.plots.drift import plot_cka_by_layer, plot_drift_by_depth, plot_spectral_split, plot_weight_drift_heatmap
from modlens.report import save_figures_page
from modlens.resolve import choice_list

PAGE = "drift.html"


def run(args: argparse.Namespace) -> int:
    out = check_out_dir(args.out, replace=args.replace)
    measures = choice_list("--measures", args.measures, MEASURES)
    if args.batch_size <= 0 or args.top_k <= 0:
        raise ConfigError("--batch-size and --top-k must be positive")
    base = model_from_args(args.base, args)
    tuned = model_from_args(args.tuned, args, revision_arg="tuned_revision")
    check_pair(base, tuned)
    check_tokenizers(base, tuned)
    batch = batch_from_args(base, args)

    weights = run_weight_drift(base, tuned, top_k=args.top_k)
    activations = run_activation_drift(
        base, tuned, batch, measures=measures, batch_size=args.batch_size, progress=not args.no_progress
    )
    summary = pd.concat(
        [
            summarize_weight_drift(weights, n_layers=base.spec.n_layers).assign(source="weights", hook=None),
            summarize_activation_drift(activations, n_layers=base.spec.n_layers).assign(source="activations"),
        ],
        ignore_index=True,
    )[["source", "hook", "measure", "lower_share", "upper_share", "mean_depth", "total"]]

    figures = _figures(weights, activations, measures)
    config = {
        "command": "drift",
        "base": args.base,
        "tuned": args.tuned,
        "revision": args.revision,
        "tuned_revision": args.tuned_revision,
        "task": args.task,
        "prompts": str(Path(args.prompts).resolve()) if args.prompts else None,
        "n_examples": len(batch),
        "n_pos": batch.n_pos,
        "sample_seed": args.seed,
        "measures": list(measures),
        "batch_size": args.batch_size,
        "top_k": args.top_k,
        "weights": "raw (no LayerNorm folding or centring), TransformerLens layout",
        "model_spec": base.spec.as_dict(),
    }
    write_outputs(
        out,
        config=config,
        tables={"weights": weights, "activations": activations, "summary": summary},
        writers={PAGE: lambda path: save_figures_page(figures, path, title=f"Drift: {args.base} → {args.tuned}")},
        replace=args.replace,
        seed=args.seed,
        device=str(base.device),
        dtype=str(base.dtype),
    )
    rel = summary[(summary["source"] == "weights") & (summary["measure"] == "rel_change")].iloc[0]
    print(
        f"weight drift: {rel['upper_share']:.0%} in the upper half of the layers, "
        f"mean depth {rel['mean_depth']:.2f} (0 = first layer, 1 = last)"
    )
    print(f"wrote {out}")
    return 0


def _figures(weights: pd.DataFrame, activations: pd.DataFrame, measures: tuple[str, ...]) -> dict:
    similarity = tuple(m for m in measures if m in ("linear_cka", "debiased_cka", "cosine"))
    by_weight, by_activation = weight_drift_by_layer(weights), activation_drift_by_layer(activations)
    resid = by_activation[by_activation["hook"] == "resid_post"]
    depth = pd.concat(
        [
            by_weight[by_weight["measure"] == "rel_change"].assign(model="weights: rel_change"),
            *(resid[resid["measure"] == f"1-{m}"].assign(model=f"resid_post: 1 − {m}") for m in similarity),
        ]
    ).rename(columns={"drift": "rel_change"})[["layer", "rel_change", "model"]]
    figures = {
        "Weight drift per layer and matrix": plot_weight_drift_heatmap(weights),
        "Drift by depth": plot_drift_by_depth(depth, value="rel_change", title="Drift by depth"),
        "Spectral split": plot_spectral_split(weights),
    }
    if similarity:
        figures["Activation similarity by layer"] = plot_cka_by_layer(activations, measures=similarity)
    return figures
