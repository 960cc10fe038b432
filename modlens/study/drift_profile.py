"""Where fine-tuning changed the model: the share of weight and representation drift in the upper layers.

Only the upper-half share is reported per model: the drift-weighted mean depth carries the same information
(at three layers the two are equal to rounding), and counting one number twice would bias any tally.
"""

import math
from typing import Any

import pandas as pd

from modlens.drift.activations import run_activation_drift
from modlens.drift.summary import summarize_activation_drift, summarize_weight_drift
from modlens.drift.weights import run_weight_drift
from modlens.models.model import Model
from modlens.tasks.batch import Batch

N_DRIFT_SEQUENCES = 64


def drift_profile(base: Model, tuned: Model, batch: Batch) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """``weight_drift_upper_share`` and ``cka_drift_upper_share`` (NaN when nothing changed), and per-layer
    rows ``layer, weight_rel_change, cka_drift`` for the figures."""
    weights = run_weight_drift(base, tuned)
    activations = run_activation_drift(base, tuned, batch[:N_DRIFT_SEQUENCES], measures=("linear_cka",))
    n_layers = base.spec.n_layers
    w = summarize_weight_drift(weights, n_layers=n_layers).set_index("measure").loc["rel_change"]
    a = summarize_activation_drift(activations, n_layers=n_layers)
    a = a[(a["measure"] == "1-linear_cka") & (a["hook"] == "resid_post")].iloc[0]
    metrics = {"weight_drift_upper_share": float(w["upper_share"]), "cka_drift_upper_share": float(a["upper_share"])}
    layered = weights[weights["layer"].notna() & weights["head"].isna()]
    per_layer = layered.groupby(layered["layer"].astype(int))["rel_change"].mean()
    resid: pd.Series = activations[activations["hook"] == "resid_post"].set_index("layer")["linear_cka"]
    layers = [
        {"layer": int(layer), "weight_rel_change": float(value), "cka_drift": float(1.0 - resid.get(layer, math.nan))}
        for layer, value in per_layer.items()
    ]
    return metrics, layers
