"""The study's per-layer tables averaged for its figures: drift per layer and mask density per layer, each a mean
over the runs (seeds, corpora, label noise) of one depth and pretraining step (and fine-tuning method for drift)."""

import pandas as pd

from modlens.analysis.methods import METHOD, REFERENCE, headline_method, method_rows, methods_in

DRIFT_COLUMNS = ("weight_rel_change", "cka_drift")  # the per-layer drift measures a study records


def drift_by_layer(drift_layers: pd.DataFrame, column: str) -> pd.DataFrame:
    """Mean of one drift column per depth, pretraining step and layer, and per fine-tuning method when the table
    has more than one (methods are never averaged together).

    Args:
        drift_layers: the study's ``drift_layers`` table (``depth``, ``step``, ``layer`` and the column, and
            ``method`` where the study ran several fine-tuning methods).
        column: the drift measure averaged.

    Returns:
        Columns ``depth``, ``step``, ``layer``, ``column`` and ``n_runs`` (rows averaged), with ``method`` after
        ``step`` when there are several methods (rows without a value dropped: a method that changes no weight
        has no rows); empty when the table lacks any of them.
    """
    needed = {"depth", "step", "layer", column}
    if drift_layers.empty or not needed <= set(drift_layers.columns):
        return pd.DataFrame(columns=["depth", "step", "layer", column, "n_runs"])
    keys = ["depth", "step", "layer"]
    if len(methods_in(drift_layers)) > 1:
        keys = ["depth", "step", METHOD, "layer"]
        kept = drift_layers[drift_layers[column].notna()]
        drift_layers = kept.assign(**{METHOD: kept[METHOD].fillna(REFERENCE)})
    grouped = drift_layers.groupby(keys, as_index=False)[column]
    out = grouped.mean()
    out["n_runs"] = grouped.size()["size"].to_numpy()
    return out


def mask_density_by_layer(mask_layers: pd.DataFrame, *, model: str = "tuned") -> pd.DataFrame:
    """Mean kept fraction of one model's masks per depth, pretraining step, layer and unit group (over seeds,
    corpora, subroutines and mask seeds), from the headline fine-tuning method's rows (``"full"`` when present).

    Args:
        mask_layers: the study's ``mask_layers`` table (``model``, ``depth``, ``step``, ``layer``, ``group``,
            ``density``).
        model: whose masks: ``"tuned"`` or ``"base"``.

    Returns:
        Columns ``depth``, ``step``, ``layer``, ``group``, ``density``; empty when the table lacks any of them.
    """
    keys = ["depth", "step", "layer", "group"]
    mask_layers = method_rows(mask_layers, headline_method(methods_in(mask_layers)))
    if mask_layers.empty or not {"model", "density", *keys} <= set(mask_layers.columns):
        return pd.DataFrame(columns=[*keys, "density"])
    chosen = mask_layers[mask_layers["model"] == model]
    return chosen.groupby(keys, as_index=False)["density"].mean()
