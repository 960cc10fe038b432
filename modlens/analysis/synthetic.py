"""Synthetic study frames with a known answer, for tests, examples and checking the analysis end to end."""

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

# Held-out pretraining loss (nats per answer token) along a typical trajectory of the embedded family.
TRAJECTORY_LOSS = {0: 3.0, 300: 1.5, 1000: 0.8, 3000: 0.4}


def synthetic_study_frame(
    metrics: Mapping[str, tuple[float, float]],
    *,
    seeds: Sequence[int] = (0, 1, 2, 3, 4),
    depths: Sequence[int] = (2,),
    corpora: Sequence[str] = ("primitives",),
    steps: Mapping[int, float] = TRAJECTORY_LOSS,
    subroutines: Sequence[str] = ("",),
    loss_jitter: float = 0.05,
    run_sd: float = 0.0,
    seed: int = 0,
) -> pd.DataFrame:
    """A study frame in which each metric is ``slope · pretrain_loss + run effect + noise_sd · N(0, 1)``.

    Args:
        metrics: name -> ``(slope, noise_sd)``; ``(0, 0)`` is a constant metric, ``(0, 1)`` pure noise.
        seeds: pretraining seeds (one run per seed and group).
        depths: model depths.
        corpora: pretraining corpora.
        steps: pretraining step -> its typical held-out loss (step 0 is random init).
        subroutines: per-subroutine rows of every metric (``""``: one row).
        loss_jitter: relative spread of a unit's measured loss around the step's typical loss.
        run_sd: standard deviation of a run-level offset shared by all of a run's checkpoints, per metric.
        seed: seed of the noise.

    Returns:
        The study frame: one row per unit, metric and subroutine, with a ``unit`` column.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for depth in depths:
        for corpus in corpora:
            for s in seeds:
                offsets = {metric: run_sd * rng.standard_normal() for metric in metrics}
                for step, typical in steps.items():
                    loss = typical * (1 + loss_jitter * rng.standard_normal())
                    common = {"unit": f"d{depth}-{corpus}-seed{s}-step{step}", "depth": depth, "seed": s}
                    common |= {"label_noise": 0.0, "corpus": corpus, "step": step, "pretrain_loss": loss}
                    common |= {"pretrain_accuracy": float(np.exp(-loss))}
                    for metric, (slope, noise_sd) in metrics.items():
                        for sub in subroutines:
                            value = slope * loss + offsets[metric] + noise_sd * rng.standard_normal()
                            rows.append(common | {"metric": metric, "subroutine": sub, "value": value})
    return pd.DataFrame(rows)
