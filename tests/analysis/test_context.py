import numpy as np
import pandas as pd

from modlens.analysis import analyse_study, synthetic_study_frame
from modlens.analysis.context import REUSE_FLOOR, context_sentences


def frame_with(reached: list[float], heldout_scale: float):
    frame = synthetic_study_frame({"heldout_composite_accuracy": (0.0, 0.0)}, seeds=(0, 1), seed=1)
    frame.loc[frame["metric"] == "heldout_composite_accuracy", "value"] = heldout_scale / (1 + frame["pretrain_loss"])
    targets = frame[frame["metric"] == "heldout_composite_accuracy"].copy()
    targets["metric"] = "reached_target"
    targets["value"] = np.resize(reached, len(targets))
    return pd.concat([frame, targets], ignore_index=True)


def test_fine_tunes_that_missed_the_target_are_counted() -> None:
    sentences = context_sentences(frame_with([1.0, 0.0, 1.0, 1.0], heldout_scale=1.0))
    assert sentences[0] == (
        "6 of 8 fine-tunes reached their accuracy target on the trained composites; the 2 that did not are "
        "counted and left out of every mechanistic metric."
    )
    assert len(sentences) == 1  # held-out accuracy reaches above the floor at the best level


def test_a_floor_effect_is_named_instead_of_ranked() -> None:
    frame = frame_with([1.0], heldout_scale=0.4)  # at most 0.4 / (1 + 0.4) below the floor everywhere
    floor = context_sentences(frame)[-1]
    assert floor.startswith("No systematic reuse at this scale") and f"below {REUSE_FLOOR}" in floor
    assert "step 3000" in floor  # the best level is the best-pretrained one
    found = analyse_study(frame, primary_metrics=("heldout_composite_accuracy",), n_perm=99, power_studies=0).answer
    assert floor in found.summary
