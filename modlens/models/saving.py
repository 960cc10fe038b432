"""Saving a ``Model`` as a Hugging Face directory (safetensors) with its tokenizer and provenance."""

import json
import os
from pathlib import Path
from typing import Any

from modlens.atomic import atomic_directory
from modlens.errors import ModlensError
from modlens.models.model import Model
from modlens.provenance import provenance

PROVENANCE_FILE = "provenance.json"


def save_model(model: Model, path: "str | os.PathLike[str]", *, replace: bool = False, **record: Any) -> Path:
    """Writes ``model`` to ``path`` atomically: weights (safetensors), config, tokenizer, provenance JSON.

    The directory appears complete or not at all: it is written beside ``path`` and renamed into place.

    Args:
        model: the model to save.
        path: target directory.
        replace: replace an existing directory.
        **record: extra provenance fields (seed, training step, ...).

    Returns:
        The directory written.
    """
    target = Path(path).expanduser()
    if target.exists() and not replace:
        raise ModlensError(f"{str(target)!r} already exists; pass replace=True to replace it")
    with atomic_directory(target, replace=replace) as staging:
        model.hf.save_pretrained(staging, safe_serialization=True)
        if model.tokenizer is not None:
            model.tokenizer.save_pretrained(staging)
        meta = provenance(
            source=model.source,
            revision=model.revision,
            device=str(model.device),
            dtype=str(model.dtype),
            spec=model.spec.as_dict(),
            **record,
        )
        (staging / PROVENANCE_FILE).write_text(json.dumps(meta, indent=2))
    return target


def read_provenance(path: "str | os.PathLike[str]") -> dict[str, Any]:
    """The provenance JSON saved beside a model, or ``{}`` when there is none."""
    file = Path(path) / PROVENANCE_FILE
    return json.loads(file.read_text()) if file.is_file() else {}
