"""Memory sizes as people write them ("512MB", "2GB"), as bytes for the code; light, the CLI parser imports it."""

import re

from modlens.errors import ConfigError

_UNITS = {"": 2**20, "b": 1, "k": 2**10, "kb": 2**10, "m": 2**20, "mb": 2**20, "g": 2**30, "gb": 2**30}
_SIZE = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-z]*)\s*")


def parse_size(text: str | float) -> int:
    """Bytes in ``text``: a number with a unit (B, KB, MB, GB; binary multiples), a bare number meaning MB."""
    match = _SIZE.fullmatch(str(text).lower())
    if match is None or match.group(2) not in _UNITS:
        raise ConfigError(f"invalid size {text!r}: give a number with a unit, such as 512MB or 2GB")
    size = int(float(match.group(1)) * _UNITS[match.group(2)])
    if size <= 0:
        raise ConfigError(f"invalid size {text!r}: it must be positive, such as 512MB or 2GB")
    return size


def format_size(n_bytes: int) -> str:
    """``n_bytes`` in the largest unit that keeps it at least 1 (e.g. 1536 MiB -> "1.5GB")."""
    for unit, scale in (("GB", 2**30), ("MB", 2**20), ("KB", 2**10)):
        if n_bytes >= scale:
            return f"{n_bytes / scale:g}{unit}"
    return f"{n_bytes}B"
