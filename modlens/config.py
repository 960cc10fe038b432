"""Frozen-dataclass configs from TOML files and ``key=value`` overrides, with strict key and type checks."""

import dataclasses
import os
import tomllib
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from modlens.errors import ConfigError

C = TypeVar("C")


def config_from_mapping(cls: type[C], values: Mapping[str, Any], *, base: C | None = None) -> C:
    """Builds ``cls`` from ``values`` (on top of ``base``); unknown keys and wrong types raise ``ConfigError``."""
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ConfigError(f"unknown config key {unknown[0]!r}; valid keys: {', '.join(sorted(fields))}")
    hints = typing.get_type_hints(cls)
    kwargs = {k: _coerce(k, v, hints[k]) for k, v in values.items()}
    try:
        return dataclasses.replace(base, **kwargs) if base is not None else cls(**kwargs)  # type: ignore[type-var]
    except TypeError as err:
        raise ConfigError(str(err)) from err


def parse_overrides(pairs: Iterable[str]) -> dict[str, str]:
    """``["a=1", "b=x,y"]`` -> ``{"a": "1", "b": "x,y"}``; malformed pairs raise ``ConfigError``."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"malformed override {pair!r}; write key=value")
        out[key.strip()] = value.strip()
    return out


def load_config(
    cls: type[C],
    *,
    path: "str | os.PathLike[str] | None" = None,
    overrides: Iterable[str] = (),
    base: C | None = None,
) -> C:
    """``base`` (or defaults), then the TOML file at ``path``, then ``key=value`` overrides."""
    config = base if base is not None else cls()
    if path is not None:
        file = Path(path).expanduser()
        if not file.is_file():
            raise ConfigError(f"config file {str(file)!r} does not exist")
        try:
            data = tomllib.loads(file.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as err:
            raise ConfigError(f"{file.name}: malformed TOML ({err})") from err
        config = config_from_mapping(cls, data, base=config)
    return config_from_mapping(cls, parse_overrides(overrides), base=config)


def _coerce(key: str, value: Any, hint: Any) -> Any:
    """Converts TOML values and override strings to the field's declared type."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        is_none = value is None or (isinstance(value, str) and value.lower() in ("none", "null"))
        if is_none and type(None) in args:
            return None
        return _coerce(key, value, options[0])
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{key} must be one of {', '.join(map(repr, args))}, got {value!r}")
        return value
    if origin is tuple:
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list | tuple):
            raise ConfigError(f"{key} must be a list, got {value!r}")
        inner = args[0] if args else str
        return tuple(
            _coerce(key, item.strip() if isinstance(item, str) else item, inner) for item in items if item != ""
        )
    try:
        if hint is bool:
            if isinstance(value, bool):
                return value
            if str(value).lower() in ("true", "1", "yes"):
                return True
            if str(value).lower() in ("false", "0", "no"):
                return False
            raise ValueError
        if hint is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value)
        if hint is float:
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if hint is str:
            if not isinstance(value, str):
                raise ValueError
            return value
    except (TypeError, ValueError):  # TypeError: a list or table where a scalar belongs
        raise ConfigError(f"{key} must be {hint.__name__}, got {value!r}") from None
    return value


def config_dict(config: Any) -> dict[str, Any]:
    """A JSON-ready dict of a config dataclass."""
    return dataclasses.asdict(config)
