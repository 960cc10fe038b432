"""``modlens mask``: learn the subnetwork of a model for one task; write the mask, a summary and a figure."""

import argparse

import pandas as pd

from modlens.cli.common import batch_from_args, model_from_args
from modlens.interventions.replacements import Replacement
from modlens.masks import fit_mask, save_mask
from modlens.modularity import masked_accuracy
from modlens.outputs import check_out_dir, write_outputs
from modlens.plots.masks import plot_mask_density
from modlens.report import save_figure_html
from modlens.tasks import answer_accuracy


def run(args: argparse.Namespace) -> int:
    out = check_out_dir(args.out, replace=args.replace)
    model = model_from_args(args.model, args)
    evaluation = batch_from_args(model, args)
    # fit on the train split, report on the held-out test split (a prompts file is both)
    fit_batch = evaluation if args.prompts else batch_from_args(model, args, split="train")
    mask = fit_mask(
        model,
        fit_batch,
        granularity=args.granularity,
        algorithm=args.algorithm,
        sparsity=args.sparsity,
        steps=args.steps,
        seed=args.mask_seed,
        replacement=args.replacement,
        progress=not args.no_progress,
    )
    replacement: Replacement = args.replacement if args.granularity == "component" else "zero"
    full = float(answer_accuracy(model.logits(evaluation.tokens), evaluation))
    inside = masked_accuracy(model, mask, evaluation, keep="inside", replacement=replacement)
    outside = masked_accuracy(model, mask, evaluation, keep="outside", replacement=replacement)
    summary = pd.DataFrame(
        [
            {
                "task": evaluation.task,
                "size": mask.size,
                "n_units": mask.n_units,
                "density": mask.density,
                "accuracy_full": full,
                "accuracy_inside": inside,
                "accuracy_outside": outside,
                "fit_seconds": mask.meta["seconds"],
            }
        ]
    )
    mask_file = "mask.json" if mask.granularity == "component" else "mask.safetensors"
    figure = plot_mask_density(mask.density_by_layer(), title=f"Mask for {evaluation.task}: kept fraction per layer")
    config = {k: v for k, v in vars(args).items() if k not in ("func",)}
    write_outputs(
        out,
        config=config,
        tables={"summary": summary, "density": mask.density_by_layer()},
        writers={mask_file: lambda path: save_mask(mask, path), "density.html": lambda p: save_figure_html(figure, p)},
        replace=args.replace,
        seed=args.mask_seed,
    )
    print(
        f"kept {mask.size} of {mask.n_units} units ({mask.density:.1%}); accuracy on held-out {evaluation.task}: "
        f"full {full:.3f}, mask alone {inside:.3f}, mask removed {outside:.3f}"
    )
    print(f"wrote {out}")
    return 0
