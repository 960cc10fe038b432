"""The study: does pretraining quality change the modularity of fine-tuned models?"""

from modlens.study.pipeline import StudyResult, plan_checkpoints, plan_pretraining, run_study, split_tables
from modlens.study.presets import PRESETS, StudyConfig

__all__ = ["PRESETS", "StudyConfig", "StudyResult", "plan_checkpoints", "plan_pretraining", "run_study", "split_tables"]
