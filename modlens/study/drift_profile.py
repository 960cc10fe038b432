"""Where fine-tuning changed the model: the share of weight and representation drift in the upper layers.

Only the upper-half share is reported per model: the drift-weighted mean depth carries the same information
(at three layers the two are equal to rounding), and counting one number twice would bias any tally.
"""

import math
from typing import Any

import pandas as pd

from modlens.drift.activations import run_activation_drift
from modlens.drift.summary import activation_drift_by_layer, depth_summary, weight_drift_by_layer
from modlens.drift.weights import run_weight_drift
from modlens.models.model import Model
from modlens.tasks.batch import Batch

N_DRIFT_SEQUENCES = 64
DRIFT_SHARES = ("weight_drift_upper_share", "cka_drift_upper_share")
"""The two per-model drift summaries ``drift_profile`` reports."""


def drift_profile(base: Model, tuned: Model, batch: Batch) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """``weight_drift_upper_share`` and ``cka_drift_upper_share`` (NaN when nothing changed), and per-layer
    rows ``layer, weight_rel_change, cka_drift`` for the figures."""
    weights = weight_drift_by_layer(run_weight_drift(base, tuned))
    weights = weights[weights["measure"] == "rel_change"]
    activations = run_activation_drift(base, tuned, batch[:N_DRIFT_SEQUENCES], measures=("linear_cka",))
    cka = activation_drift_by_layer(activations)
    cka = cka[(cka["measure"] == "1-linear_cka") & (cka["hook"] == "resid_post")]
    n_layers = base.spec.n_layers
    metrics = {
        "weight_drift_upper_share": _upper_share(weights, n_layers),
        "cka_drift_upper_share": _upper_share(cka, n_layers),
    }
    resid = cka.set_index("layer")["drift"]
    layers = [
        {"layer": int(layer), "weight_rel_change": float(value), "cka_drift": float(resid.get(layer, math.nan))}
        for layer, value in zip(weights["layer"], weights["drift"], strict=True)
    ]
    return metrics, layers


def _upper_share(by_layer: pd.DataFrame, n_layers: int) -> float:
    return depth_summary(by_layer["drift"].to_numpy(), by_layer["layer"].to_numpy(), n_layers)["upper_share"]
