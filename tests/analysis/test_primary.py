"""Primary metrics: Holm's correction, the one-to-three rule, verdicts and the "not assessed" rows."""

import numpy as np
import pandas as pd
import pytest

from modlens.analysis import check_primary, holm, primary_table, rank_correlations, synthetic_study_frame
from modlens.errors import ConfigError


def test_holm_hand_computed():
    # sorted 0.01·3 = 0.03, 0.03·2 = 0.06, 0.04·1 = 0.04 → max(0.06, 0.04) = 0.06
    np.testing.assert_allclose(holm(np.array([0.01, 0.04, 0.03])), [0.03, 0.06, 0.06])
    # a member without a test counts as p = 1 and keeps the family size
    np.testing.assert_allclose(holm(np.array([0.01, np.nan, 0.02])), [0.03, 1.0, 0.04])
    np.testing.assert_allclose(holm(np.array([[0.5, 0.9], [0.01, 0.02]])), [[1.0, 1.0], [0.02, 0.02]])  # 0.5·2 = 1.0


def test_more_than_three_primary_metrics_is_a_one_line_config_error():
    with pytest.raises(ConfigError) as err:
        check_primary(("a", "b", "c", "d"))
    assert "\n" not in str(err.value) and "one to 3 primary_metrics, got 4" in str(err.value)
    with pytest.raises(ConfigError, match="repeat"):
        check_primary(("a", "a"))
    with pytest.raises(ConfigError):
        check_primary(())


def _frame():
    metrics = {"heldout_composite_accuracy": (-2.0, 0.01), "reuse_specificity": (2.0, 0.01), "other": (0.0, 1.0)}
    return synthetic_study_frame(metrics, seeds=range(8), run_sd=0.5)


def test_verdicts_follow_direction_and_sign():
    corr = rank_correlations(_frame(), n_perm=999)
    table = primary_table(corr, ("heldout_composite_accuracy", "reuse_specificity", "other")).set_index("metric")
    # accuracy falls with loss (ρ < 0): rises with better pretraining; higher = more modular.
    assert table.loc["heldout_composite_accuracy", "verdict"] == "established: more modular"
    assert table.loc["reuse_specificity", "verdict"] == "established: less modular"
    assert table.loc["other", "verdict"] == "not established"
    raw = table["p_value"].to_numpy()
    np.testing.assert_allclose(table["p_adjusted"], holm(raw))


def test_metric_without_values_is_not_assessed_with_reason():
    frame = _frame()
    frame.loc[(frame["metric"] == "reuse_specificity") & (frame["step"] != 0), "value"] = np.nan
    corr = rank_correlations(frame, n_perm=199)
    table = primary_table(corr, ("reuse_specificity", "weight_drift_upper_share")).set_index("metric")
    assert table.loc["reuse_specificity", "verdict"] == "not assessed"
    assert table.loc["reuse_specificity", "reason"] == "all 24 pretrained units were excluded: no value"
    assert table.loc["weight_drift_upper_share", "reason"] == "not measured in this study"
    assert table["p_adjusted"].isna().all()


def test_no_primary_metric_measured():
    corr = rank_correlations(synthetic_study_frame({"x": (1.0, 0.1)}, seeds=(0, 1)), n_perm=99)
    table = primary_table(corr, ("a",))
    assert list(table["verdict"]) == ["not assessed"] and isinstance(table, pd.DataFrame)
