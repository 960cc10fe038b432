"""Fine-tuning methods, one per file, and the registry of their names (``modlens.names.FINETUNE_METHODS``)."""

from modlens.errors import ConfigError
from modlens.training.methods.base import Method
from modlens.training.methods.full import Full
from modlens.training.methods.lora import Lora
from modlens.training.methods.proxy import NO_WEIGHTS, NoWeightsError, Proxy, ProxyModel
from modlens.training.methods.svf import Scales, SingularScale, Svf, apply_scales
from modlens.training.methods.upper import Upper

METHODS: dict[str, type[Method]] = {"full": Full, "upper": Upper, "lora": Lora, "svf": Svf, "proxy": Proxy}
"""Method option classes by name; ``METHODS[name]()`` is the method with its defaults (proxy-tuning has no default
expert, so it must be built as ``Proxy(expert=...)``)."""


def method_named(name: str) -> Method:
    """The method ``name`` with its default options."""
    if name not in METHODS:
        raise ConfigError(f"unknown fine-tuning method {name!r}; choose one of {', '.join(METHODS)}")
    return METHODS[name]()


__all__ = [
    "METHODS",
    "NO_WEIGHTS",
    "Full",
    "Lora",
    "Method",
    "NoWeightsError",
    "Proxy",
    "ProxyModel",
    "Scales",
    "SingularScale",
    "Svf",
    "Upper",
    "apply_scales",
    "method_named",
]
