"""``modlens ablate``: an exact ablation sweep over a model's components, written as CSV, config and heatmaps."""

import argparse
from pathlib import Path

from modlens.ablation import run_ablation_sweep
from modlens.cli.common import load_cli_model, task_batch
from modlens.components import SELECTIONS, Component, parse_components, select_components
from modlens.errors import ConfigError
from modlens.models import ModelSpec
from modlens.outputs import check_out_dir, write_outputs
from modlens.plots.ablation import plot_ablation_heatmap
from modlens.report import save_figure_html
from modlens.tasks.metrics import METRICS
from modlens.tasks.prompts import prepends_bos

_FIGURES = {"head": "heatmap_heads.html", "layer": "heatmap_layers.html", "neuron": "heatmap_neurons.html"}


def resolve_components(spec: ModelSpec, text: str) -> list[Component]:
    """A named group or a comma-separated list of addresses, checked against the model."""
    if text in SELECTIONS or ("," not in text and not text.strip().startswith("L")):
        return select_components(spec, text)
    components = parse_components([t for t in text.split(",") if t.strip()], spec)
    if not components:
        raise ConfigError(f"--components is empty; give a group ({'|'.join(SELECTIONS)}) or addresses")
    return components


def run(args: argparse.Namespace) -> int:
    out = check_out_dir(args.out, overwrite=args.replace)
    model = load_cli_model(args.model, args)
    components = resolve_components(model.spec, args.components)
    batch = task_batch(model, args)
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
        overwrite=args.replace,
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
