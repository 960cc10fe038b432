"""The study: does pretraining quality change the modularity of fine-tuned models?"""

from modlens.study.family_file import StudyFamily, check_family, load_family_file
from modlens.study.pipeline import StudyResult, plan_checkpoints, plan_pretraining, run_study, split_tables
from modlens.study.presets import PRESETS, StudyConfig

__all__ = [
    "PRESETS",
    "StudyConfig",
    "StudyFamily",
    "StudyResult",
    "check_family",
    "load_family_file",
    "plan_checkpoints",
    "plan_pretraining",
    "run_study",
    "split_tables",
]
