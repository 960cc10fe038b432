"""The names the CLI offers (``modlens.names``, light enough for ``--help``) are exactly the names the code accepts.

Replacements, mask algorithms and fine-tuning methods are checked beside their registries
(tests/interventions/test_paths.py, tests/training/test_methods.py); the executors import theirs from
``modlens.names``; the rest here.
"""

from modlens import names
from modlens.components import SELECTIONS
from modlens.drift.activations import MEASURES
from modlens.models.loading import DTYPES
from modlens.patching.sweep import DIRECTIONS
from modlens.study.presets import PRESETS
from modlens.tasks.metrics import METRICS


def test_each_registry_holds_the_names_users_type() -> None:
    assert tuple(METRICS) == names.METRICS
    assert tuple(DTYPES) == names.DTYPES
    assert tuple(DIRECTIONS) == names.DIRECTIONS
    assert tuple(MEASURES) == names.MEASURES
    assert tuple(SELECTIONS) == names.SELECTIONS
    assert tuple(PRESETS) == names.PRESETS
