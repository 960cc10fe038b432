"""Models: loading, saving, the tiny-model factory and base/tuned pair checks."""

from modlens.models.factory import FAMILIES, tiny_hf_model, tiny_model
from modlens.models.loading import load_model, unwrap_bridge
from modlens.models.model import Model, check_finite, check_pair
from modlens.models.saving import read_provenance, save_model
from modlens.models.spec import ModelSpec, spec_from_hf_config

__all__ = [
    "FAMILIES",
    "Model",
    "ModelSpec",
    "check_finite",
    "check_pair",
    "load_model",
    "read_provenance",
    "save_model",
    "spec_from_hf_config",
    "tiny_hf_model",
    "tiny_model",
    "unwrap_bridge",
]
