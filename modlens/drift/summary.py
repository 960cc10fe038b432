"""Where drift sits in depth: its share in the lower vs upper half of the layers and its weighted mean depth."""

from collections.abc import Sequence

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from modlens.errors import ModlensError

SUMMARY_COLUMNS = ("measure", "lower_share", "upper_share", "mean_depth", "total")
# How each measure becomes a non-negative drift (0 = unchanged).
WEIGHT_DRIFTS = {"rel_change": "rel_change", "1-cosine": "cosine"}
ACTIVATION_DRIFTS = {
    "1-linear_cka": "linear_cka",
    "1-debiased_cka": "debiased_cka",
    "1-cosine": "cosine",
    "rel_change": "rel_change",
}


def layer_depth(layer: ArrayLike, n_layers: int) -> np.ndarray:
    """Depth of each layer in [0, 1]: 0 for the first layer, 1 for the last (0 for a one-layer model)."""
    return np.asarray(layer, dtype=float) / max(n_layers - 1, 1)


def depth_summary(drift: ArrayLike, layer: ArrayLike, n_layers: int) -> dict[str, float]:
    """Share of total drift in the lower and upper half of the layers, and the drift-weighted mean depth.

    The halves split at depth 0.5; with an odd number of layers the middle layer counts half to each.

    Args:
        drift: non-negative drift per layer (one value per entry of ``layer``; repeated layers are summed).
        layer: layer index of each value.
        n_layers: number of layers of the model.
    """
    d = np.clip(np.asarray(drift, dtype=float), 0, None)
    depth = layer_depth(layer, n_layers)
    total = float(np.nansum(d))
    weight_lower = np.where(np.isclose(depth, 0.5), 0.5, (depth < 0.5).astype(float))
    if total <= 0 or not np.isfinite(total):
        return {"lower_share": float("nan"), "upper_share": float("nan"), "mean_depth": float("nan"), "total": total}
    lower = float(np.nansum(d * weight_lower) / total)
    return {
        "lower_share": lower,
        "upper_share": 1.0 - lower,
        "mean_depth": float(np.nansum(d * depth) / total),
        "total": total,
    }


def weight_drift_by_layer(weights: pd.DataFrame) -> pd.DataFrame:
    """Per-layer weight drift of ``run_weight_drift`` output: one row per measure (``rel_change``, ``1-cosine``)
    and layer, ``drift`` the mean over the layer's whole matrices (not per-head rows, not embeddings)."""
    return _by_layer(weights[weights["layer"].notna() & weights["head"].isna()], WEIGHT_DRIFTS, ())


def activation_drift_by_layer(activations: pd.DataFrame) -> pd.DataFrame:
    """Per-layer activation drift of ``run_activation_drift`` output: one row per hook, measure
    (``1-linear_cka``, ...) and layer."""
    return _by_layer(activations, ACTIVATION_DRIFTS, ("hook",))


def summarize_weight_drift(weights: pd.DataFrame, *, n_layers: int | None = None) -> pd.DataFrame:
    """Depth summary of ``run_weight_drift`` output, one row per measure (``rel_change``, ``1-cosine``), over
    ``weight_drift_by_layer``."""
    return _summarize(weight_drift_by_layer(weights), (), n_layers)


def summarize_activation_drift(activations: pd.DataFrame, *, n_layers: int | None = None) -> pd.DataFrame:
    """Depth summary of ``run_activation_drift`` output, one row per hook and measure (``1-linear_cka``, ...)."""
    return _summarize(activation_drift_by_layer(activations), ("hook",), n_layers)


def _by_layer(frame: pd.DataFrame, drifts: dict[str, str], group: Sequence[str]) -> pd.DataFrame:
    """Each measure turned into a non-negative drift (``1 - similarity``), averaged per layer within each group."""
    out = []
    groups = frame.groupby(list(group), sort=False) if group else [((), frame)]
    for key, part in groups:
        keys = dict(zip(group, key if isinstance(key, tuple) else (key,), strict=True))
        for measure, column in drifts.items():
            if column not in part:
                continue
            value = part[column].astype(float)
            drift = value if measure == column else 1.0 - value
            per_layer = drift.groupby(part["layer"].astype(int)).mean()
            out += [keys | {"measure": measure, "layer": int(layer), "drift": d} for layer, d in per_layer.items()]
    return pd.DataFrame(out, columns=[*group, "measure", "layer", "drift"])


def _summarize(by_layer: pd.DataFrame, group: Sequence[str], n_layers: int | None) -> pd.DataFrame:
    if by_layer.empty:
        raise ModlensError("no layered rows to summarise")
    n = n_layers if n_layers is not None else int(by_layer["layer"].max()) + 1
    out = []
    for key, part in by_layer.groupby([*group, "measure"], sort=False):
        keys = dict(zip([*group, "measure"], key, strict=True))
        out.append(keys | depth_summary(part["drift"].to_numpy(), part["layer"].to_numpy(), n))
    return pd.DataFrame(out, columns=[*group, *SUMMARY_COLUMNS])
