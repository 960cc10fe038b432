"""Interventions: what replaces an activation (``BUILDERS``), and where a component's activation is read or
replaced, on the TransformerLens bridge (hook names) and on the fast Hugging Face path (``DecoderStack``)."""

from modlens.interventions.alignment import Alignment, alignment_of
from modlens.interventions.bridge import (
    bridge_activations,
    component_values,
    reference_activations,
    replacing_hook,
)
from modlens.interventions.capture import recording
from modlens.interventions.replacements import (
    BUILDERS,
    InterventionError,
    ReplaceFn,
    Replacement,
    Site,
    at_position,
    check_replacement,
    needs_reference,
    position_means,
    replacement_fn,
    site_builder,
)
from modlens.interventions.stack import CleanRun, DecoderStack, LayerRecord

__all__ = [
    "BUILDERS",
    "Alignment",
    "CleanRun",
    "DecoderStack",
    "InterventionError",
    "LayerRecord",
    "ReplaceFn",
    "Replacement",
    "Site",
    "alignment_of",
    "at_position",
    "bridge_activations",
    "check_replacement",
    "component_values",
    "needs_reference",
    "position_means",
    "recording",
    "reference_activations",
    "replacement_fn",
    "replacing_hook",
    "site_builder",
]
