"""``modlens ablate``: an exact ablation sweep over a model's components, written as CSV, config and heatmaps."""

import argparse
from pathlib import Path

from modlens.ablation import ABLATIONS, run_ablation_sweep
from modlens.cli.common import add_model_arguments, add_task_arguments, load_cli_model, task_batch
from modlens.components import SELECTIONS, Component, parse_components, select_components
from modlens.errors import ConfigError
from modlens.models import ModelSpec
from modlens.outputs import check_out_dir, write_outputs
from modlens.plots.ablation import plot_ablation_heatmap
from modlens.report import save_figure_html
from modlens.tasks.metrics import METRICS
from modlens.tasks.prompts import prepends_bos

HELP = "ablate every head / neuron / MLP layer alone and record the change of a metric (exact, batched)"

_FIGURES = {"head": "heatmap_heads.html", "layer": "heatmap_layers.html", "neuron": "heatmap_neurons.html"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_arguments(parser)
    add_task_arguments(parser)
    parser.add_argument(
        "--components",
        default="heads",
        help=f"a group ({'|'.join(SELECTIONS)}) or comma-separated addresses such as L0H1,L1.mlp,L2N17",
    )
    parser.add_argument("--method", default="mean", choices=list(ABLATIONS), help="ablation method")
    parser.add_argument("--metric", default="loss", choices=list(METRICS), help="metric on the answer tokens")
    parser.add_argument("--resample-seed", type=int, default=0, help="seed of resample ablation")
    parser.add_argument(
        "--memory-budget", type=float, default=1024.0, metavar="MB", help="activation memory per stacked forward"
    )
    parser.add_argument("--out", required=True, metavar="DIR", help="output directory (must be new or empty)")
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty output directory")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def resolve_components(spec: ModelSpec, text: str) -> list[Component]:
    """A named group or a comma-separated list of addresses, checked against the model."""
    if text in SELECTIONS or ("," not in text and not text.strip().startswith("L")):
        return select_components(spec, text)
    components = parse_components([t for t in text.split(",") if t.strip()], spec)
    if not components:
        raise ConfigError(f"--components is empty; give a group ({'|'.join(SELECTIONS)}) or addresses")
    return components


def run(args: argparse.Namespace) -> int:
    out = check_out_dir(args.out, overwrite=args.overwrite)
    if args.memory_budget <= 0:
        raise ConfigError(f"--memory-budget must be positive, got {args.memory_budget}")
    model = load_cli_model(args.model, args)
    components = resolve_components(model.spec, args.components)
    batch = task_batch(model, args)
    budget = int(args.memory_budget * 2**20)
    frame = run_ablation_sweep(
        model,
        batch,
        components,
        method=args.method,
        metric=METRICS[args.metric],
        seed=args.resample_seed,
        memory_budget=budget,
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
        "method": args.method,
        "reference": "the evaluated batch",
        "metric": args.metric,
        "resample_seed": args.resample_seed,
        "memory_budget_bytes": budget,
        "model_spec": model.spec.as_dict(),
    }
    write_outputs(
        out,
        config=config,
        tables={"ablation": frame},
        writers=figures,
        overwrite=args.overwrite,
        seed=args.resample_seed,
        device=str(model.device),
        dtype=str(model.dtype),
    )
    top = frame.reindex(frame["change"].abs().sort_values(ascending=False).index).head(5)
    print(f"ablated {len(frame)} components ({args.method}, {args.metric}); clean {frame['clean'].iloc[0]:.4f}")
    print(
        "largest changes: " + ", ".join(f"{c} {v:+.4f}" for c, v in zip(top["component"], top["change"], strict=True))
    )
    print(f"wrote {out}")
    return 0
