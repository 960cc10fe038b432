"""Tolerances for comparing a sweep table (ablation or patching) from a fast path with the plain loop's."""

import pandas as pd
import torch

# float32: the fast paths add a component's change to the clean output instead of recomputing it, so
# values differ from the loop's by rounding, ~1e-7 of the metric, far inside the 1e-5 relative bound.
RTOL, ATOL = 1e-5, 1e-6


def assert_frames_close(
    fast: pd.DataFrame,
    slow: pd.DataFrame,
    *,
    value: str = "ablated",
    base: str = "clean",
    key: str = "component",
    unit: float = 1.0,
) -> None:
    """Metric values within ``RTOL`` relative; changes within ``RTOL`` of the metric itself.

    ``unit`` scales the absolute tolerance for a metric that divides float32 results by a small number
    (the normalised logit difference divides by clean minus corrupted, ~3e-3 on a random tiny model).

    A change is a difference of two metric values, so its rounding error scales with the metric, not with
    the change: a change of 1e-4 on a loss of 3 carries an error of about 3e-7 (seen: 1.2e-6 on Llama).
    """
    assert list(fast[key]) == list(slow[key])
    scale = float(slow[base].abs().max())
    value_atol = ATOL * unit
    for col, atol in ((base, value_atol), (value, value_atol), ("change", max(value_atol, RTOL * scale))):
        torch.testing.assert_close(
            torch.tensor(fast[col].to_numpy()), torch.tensor(slow[col].to_numpy()), rtol=RTOL, atol=atol
        )
