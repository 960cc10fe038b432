"""The synthetic-task layout a model was trained with, read from its saved provenance."""

from modlens.errors import TaskError
from modlens.models.model import Model
from modlens.models.saving import read_provenance
from modlens.tasks.synthetic import TaskLayout


def task_layout_of(model: Model) -> TaskLayout:
    """The synthetic layout a model was trained with (recorded in its provenance), or the default."""
    recorded = read_provenance(model.source).get("layout") if model.source else None
    layout = TaskLayout(**recorded) if isinstance(recorded, dict) else TaskLayout()
    if model.spec.d_vocab < layout.vocab.size:
        raise TaskError(
            f"synthetic tasks need a vocabulary of {layout.vocab.size} tokens, the model has {model.spec.d_vocab}; "
            "use --prompts with this model"
        )
    return layout
