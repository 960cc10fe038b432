"""Regenerates the README's gallery (assets/gallery_*.png) from the quick study's results.

    ./run study                              # the quick preset, into results/quick/
    .venv/bin/python examples/gallery.py     # [--study results/quick] [--assets assets]

Every image comes from real runs: the study's own store (its figures and per-layer tables), and one of
its pretrained checkpoints, ablated and fine-tuned here (about a minute on 2 CPU cores).
"""

import argparse
from pathlib import Path

import plotly.graph_objects as go

# The README shows the best-pretrained checkpoint of the first seed; any member and step would do.
MEMBER, STEP, TASK = "L3-seed0-noise0.00", 1000, "reverse"


def study_figures(study_dir: Path) -> dict[str, go.Figure]:
    from modlens.report import drift_figures, load_study, mask_figures

    study = load_study(study_dir)
    drift = drift_figures(study.drift_layers)
    masks = mask_figures(study.mask_layers)
    if not drift or not masks:
        raise SystemExit(f"{study_dir} has no per-layer drift or mask tables; rerun the study: ./run study --replace")
    return {"drift_by_depth": drift["weight_drift"].figure, "mask_density": next(iter(masks.values())).figure}


def checkpoint_figures(study_dir: Path) -> dict[str, go.Figure]:
    from modlens import finetune, load_model, run_ablation_sweep, run_weight_drift
    from modlens.components import enumerate_components
    from modlens.plots.ablation import plot_ablation_heatmap
    from modlens.plots.drift import plot_spectral_split, plot_weight_drift_heatmap
    from modlens.study import PRESETS
    from modlens.tasks import PRIMITIVES, SyntheticTask, loss
    from modlens.training import FinetuneConfig
    from modlens.zoo.cache import checkpoint_dirname

    path = study_dir / "models" / MEMBER / checkpoint_dirname(STEP)
    if not path.is_dir():
        raise SystemExit(f"no checkpoint {path}; run the quick study first: ./run study")
    base = load_model(path)
    layout = PRESETS["quick"].family.layout
    batch = SyntheticTask((TASK,), layout).sample(256, split="test", seed=0)
    components = enumerate_components(base.spec, "head") + enumerate_components(base.spec, "mlp")
    sweep = run_ablation_sweep(base, batch, components, replacement="mean", metric=loss)
    finetune_tasks = [SyntheticTask.from_name(n, layout) for n in PRESETS["quick"].task_split().finetune]
    primitives = [SyntheticTask((p,), layout) for p in PRIMITIVES]
    config = FinetuneConfig(max_steps=800, target_accuracy=0.9, lr=1e-3, replay_fraction=0.3, n_val=256)
    tuned = finetune(base, finetune_tasks, config, replay=primitives).model
    weights = run_weight_drift(base, tuned)
    return {
        "ablation_heads": plot_ablation_heatmap(
            sweep, kind="head", title=f"Loss increase when each head is mean-ablated ({TASK}, step {STEP})"
        ),
        "weight_drift": plot_weight_drift_heatmap(weights, title="Weight drift of a fine-tune, per layer and matrix"),
        "spectral_split": plot_spectral_split(weights),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", type=Path, default=Path("results/quick"), help="the quick study's --out directory")
    parser.add_argument("--assets", type=Path, default=Path("assets"))
    args = parser.parse_args()
    from modlens.report import save_figure

    figures = {**study_figures(args.study), **checkpoint_figures(args.study)}
    for name, fig in figures.items():
        fig.update_layout(width=900, height=450)
        print(save_figure(fig, args.assets / f"gallery_{name}.png", scale=1.5))


if __name__ == "__main__":
    main()
