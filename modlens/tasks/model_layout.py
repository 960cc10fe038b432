"""The synthetic-task layout a model was trained with, read from its saved provenance."""

from modlens.errors import TaskError
from modlens.models.model import Model
from modlens.models.saving import read_provenance
from modlens.tasks.synthetic import TaskLayout


def task_layout_of(model: Model) -> TaskLayout:
    """The synthetic layout a model was trained with (recorded in its provenance), or the default, rendered for
    the model's tokenizer (``modlens.tasks.rendering``) when that is not the synthetic task vocabulary.

    Raises:
        TaskError: a tokenizer that cannot write the tasks one token per symbol, or a vocabulary too small.
    """
    recorded = read_provenance(model.source).get("layout") if model.source else None
    layout = TaskLayout.from_record(recorded) if isinstance(recorded, dict) else TaskLayout()
    try:
        layout = layout.rendered_for(model.tokenizer)
    except TaskError as err:
        raise TaskError(f"{err}; use --prompts with this model") from None
    if model.spec.d_vocab < layout.n_vocab:
        raise TaskError(
            f"synthetic tasks need a vocabulary of {layout.n_vocab} tokens, the model has {model.spec.d_vocab}; "
            "use --prompts with this model"
        )
    return layout
