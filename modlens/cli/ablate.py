"""``modlens ablate``: an exact ablation sweep over a model's components, written as CSV, config and heatmaps."""

import argparse
from pathlib import Path

from modlens.ablation import run_ablation_sweep
from modlens.cli.common import batch_from_args, components_from_args, model_from_args
from modlens.outputs import check_out_dir, write_outputs
from modlens.plots.ablation import plot_ablation_heatmap
from modlens.report import save_figure_html
from modlens.tasks.metrics import METRICS
from modlens.tasks.prompts import prepends_bos

_FIGURES = {"head": "heatmap_heads.html", "layer": "heatmap_layers.html", "neuron": "heatmap_neurons.html"}


def run(args: argparse.Namespace) -> int:
    out = check_out_dir(args.out, replace=args.replace)
    model = model_from_args(args.model, args)
    components = components_from_args(model, args)
    batch = batch_from_args(model, args)
    frame = run_ablation_sweep(
        model,
        batch,
        components,
        replacement=args.replacement,
        metric=METRICS[args.metric],
        seed=args.resample_seed,
        memory_budget=args.memory_budget,
        progress=not args.no_progress,
    )
    figures = {}
    for kind, filename in _FIGURES.items():
        present = frame["kind"].isin(["attn", "mlp"]) if kind == "layer" else frame["kind"] == kind
        if present.any():
            fig = plot_ablation_heatmap(frame, kind=kind)
            figures[filename] = lambda path, fig=fig: save_figure_html(fig, path)
    config = {
        "command": "ablate",
        "model": args.model,
        "revision": args.revision,
        "task": args.task,
        "prompts": str(Path(args.prompts).resolve()) if args.prompts else None,
        "tokenizer_prepends_bos": prepends_bos(model.tokenizer) if args.prompts else None,
        "n_examples": len(batch),
        "sample_seed": args.seed,
        "components": args.components,
        "n_components": len(components),
        "replacement": args.replacement,
        "reference": "the evaluated batch",
        "metric": args.metric,
        "resample_seed": args.resample_seed,
        "memory_budget_bytes": args.memory_budget,
        "model_spec": model.spec.as_dict(),
    }
    write_outputs(
        out,
        config=config,
        tables={"ablation": frame},
        writers=figures,
        replace=args.replace,
        seed=args.resample_seed,
        device=str(model.device),
        dtype=str(model.dtype),
    )
    top = frame.reindex(frame["change"].abs().sort_values(ascending=False).index).head(5)
    print(f"ablated {len(frame)} components ({args.replacement}, {args.metric}); clean {frame['clean'].iloc[0]:.4f}")
    print(
        "largest changes: " + ", ".join(f"{c} {v:+.4f}" for c, v in zip(top["component"], top["change"], strict=True))
    )
    print(f"wrote {out}")
    return 0
