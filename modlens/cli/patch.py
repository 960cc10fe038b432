"""``modlens patch``: activation patching between clean and corrupted prompts, written as CSV, config and heatmaps."""

import argparse
from pathlib import Path

import pandas as pd
from transformers import PreTrainedTokenizerBase

from modlens.ablation import compare_attribution
from modlens.cli.common import components_from_args, model_from_args
from modlens.errors import ConfigError
from modlens.outputs import check_out_dir, write_outputs
from modlens.patching import (
    DIRECTIONS,
    PatchingBatch,
    Positions,
    load_patching_batch,
    patching_metric,
    run_attribution_patching_pairs,
    run_patching_sweep,
)
from modlens.plots.patching import plot_patching_heatmap
from modlens.report import save_figure_html
from modlens.tasks.prompts import prepends_bos


def parse_positions(text: str | None) -> Positions:
    if text is None:
        return None
    if text == "each":
        return "each"
    try:
        return [int(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise ConfigError(f"--positions must be 'each' or comma-separated integers, got {text!r}") from None


def _tokens(tokenizer: PreTrainedTokenizerBase | None, pairs: PatchingBatch) -> list[str] | None:
    """The clean prompt's tokens, when every pair has one length (then they label the positions)."""
    if tokenizer is None or not pairs.equal_lengths:
        return None
    return [str(tokenizer.decode([int(t)])) for t in pairs.clean.tokens[0]]


def run(args: argparse.Namespace) -> int:
    out = check_out_dir(args.out, replace=args.replace)
    positions = parse_positions(args.positions)
    model = model_from_args(args.model, args)
    components = components_from_args(model, args)
    pairs = load_patching_batch(args.prompts, model.tokenizer, n_ctx=model.spec.n_ctx)
    metric = patching_metric(model, pairs)
    directions = DIRECTIONS if args.direction == "both" else (args.direction,)
    budget = args.memory_budget
    frames, estimates = [], []
    agreement: dict[str, dict[str, float]] = {}
    for direction in directions:
        frame = run_patching_sweep(
            model,
            pairs,
            components,
            positions=positions,
            direction=direction,
            metric=metric,
            memory_budget=budget,
            progress=not args.no_progress,
        )
        frames.append(frame)
        if args.attribution:
            estimate = run_attribution_patching_pairs(
                model, pairs, components, positions=positions, direction=direction, metric=metric
            )
            estimates.append(estimate)
            check = compare_attribution(estimate, frame, key="site")
            agreement[direction] = {"spearman": check.spearman, "top_10_overlap": check.top_k_overlap}
    table = pd.concat(frames, ignore_index=True)
    tokens = _tokens(model.tokenizer, pairs)
    figures = {}
    for direction in directions:
        for kind in dict.fromkeys(table["kind"]):
            fig = plot_patching_heatmap(table[table["direction"] == direction], kind=kind, tokens=tokens)
            figures[f"heatmap_{direction}_{kind}.html"] = lambda path, fig=fig: save_figure_html(fig, path)
    config = {
        "command": "patch",
        "model": args.model,
        "revision": args.revision,
        "prompts": str(Path(args.prompts).resolve()),
        "n_pairs": len(pairs),
        "components": args.components,
        "n_components": len(components),
        "positions": args.positions,
        "directions": list(directions),
        "metric": "normalised logit difference (answer - wrong_answer): 0 = corrupted run, 1 = clean run",
        "logit_diff_clean": metric.clean_value,
        "logit_diff_corrupted": metric.corrupt_value,
        "tokenizer_prepends_bos": prepends_bos(model.tokenizer),
        "prompt_tokens": tokens,
        "attribution_agreement": agreement or None,
        "memory_budget_bytes": budget,
        "model_spec": model.spec.as_dict(),
    }
    tables = {"patching": table}
    if estimates:
        tables["attribution"] = pd.concat(estimates, ignore_index=True)
    write_outputs(
        out,
        config=config,
        tables=tables,
        writers=figures,
        replace=args.replace,
        device=str(model.device),
        dtype=str(model.dtype),
    )
    print(
        f"patched {len(frames[0])} sites over {len(pairs)} pairs; logit difference clean "
        f"{metric.clean_value:.4f}, corrupted {metric.corrupt_value:.4f} (normalised: 1 and 0)"
    )
    for frame in frames:
        top = frame.reindex(frame["change"].abs().sort_values(ascending=False).index).head(5)
        pairs_text = ", ".join(f"{s} {v:.3f}" for s, v in zip(top["site"], top["patched"], strict=True))
        print(f"{frame['direction'].iloc[0]}: largest effects (patched metric): {pairs_text}")
    for direction, scores in agreement.items():
        print(
            f"attribution patching ({direction}) against the exact sweep: Spearman {scores['spearman']:.3f}, "
            f"top-10 overlap {scores['top_10_overlap']:.2f}"
        )
    print(f"wrote {out}")
    return 0
