"""Mask files: JSON (kept component addresses) for component masks, safetensors for weight masks."""

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from modlens.components import ComponentError, parse_component
from modlens.masks.mask import SHAPE_FIELDS, Mask, MaskError, _component_tensors

FORMAT = "modlens.mask"
VERSION = 1


def save_mask(mask: Mask, path: "str | os.PathLike[str]") -> Path:
    """Writes a component mask as JSON (``*.json``) or a weight mask as safetensors (``*.safetensors``)."""
    target = Path(path)
    header = {"format": FORMAT, "version": VERSION, "granularity": mask.granularity, "shape": dict(mask.shape)}
    target.parent.mkdir(parents=True, exist_ok=True)
    if mask.granularity == "component":
        body = {**header, "meta": dict(mask.meta), "components": [str(c) for c in mask.components()]}
        target.write_text(json.dumps(body, indent=2, default=str))
        return target
    tensors = {k: v.to(torch.uint8).contiguous() for k, v in mask.units.items()}
    extra = {"header": header, "meta": dict(mask.meta), "layouts": dict(mask.layouts)}
    save_file(tensors, str(target), metadata={"modlens": json.dumps(extra, default=str)})
    return target


def load_mask(path: "str | os.PathLike[str]") -> Mask:
    """Reads a mask written by ``save_mask``.

    Raises:
        MaskError: the file is missing or is not a modlens mask.
    """
    source = Path(path)
    if not source.is_file():
        raise MaskError(f"no mask file at {str(source)!r}")
    if source.suffix == ".safetensors":
        return _load_weight_mask(source)
    try:
        body = json.loads(source.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise MaskError(f"{str(source)!r} is not a mask file: {err}") from None
    shape = _check_header(body, source)
    units = _component_tensors(shape, False)
    try:
        for text in body.get("components", []):
            comp = parse_component(text)
            units[comp.kind][comp.layer, comp.index] = True
    except (ComponentError, KeyError, IndexError) as err:
        raise MaskError(f"{str(source)!r}: bad component entry: {err}") from None
    return Mask("component", units, shape, meta=body.get("meta", {}))


def _check_header(header: Any, source: Path) -> dict[str, int]:
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise MaskError(f"{str(source)!r} is not a modlens mask file")
    shape = header.get("shape", {})
    missing = [k for k in SHAPE_FIELDS if k not in shape]
    if missing:
        raise MaskError(f"{str(source)!r}: mask header lacks the model shape fields {missing}")
    return {k: int(shape[k]) for k in SHAPE_FIELDS}


def _load_weight_mask(source: Path) -> Mask:
    try:
        with safe_open(str(source), framework="pt") as handle:
            extra = json.loads((handle.metadata() or {}).get("modlens", "{}"))
        tensors = load_file(str(source))
    except Exception as err:  # safetensors raises its own error types for corrupt files
        raise MaskError(f"{str(source)!r} is not a weight-mask file: {err}") from None
    shape = _check_header(extra.get("header"), source)
    units = {k: v.bool() for k, v in tensors.items()}
    return Mask("weight", units, shape, extra.get("layouts", {}), extra.get("meta", {}))
