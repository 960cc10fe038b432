"""Frozen-dataclass configs from TOML files and ``key=value`` overrides, with strict key and type checks."""

import dataclasses
import difflib
import os
import tomllib
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from modlens.errors import ConfigError

C = TypeVar("C")


def config_from_mapping(cls: type[C], values: Mapping[str, Any], *, base: C | None = None, prefix: str = "") -> C:
    """Builds ``cls`` from ``values`` (on top of ``base``); unknown keys and wrong types raise ``ConfigError``.

    A field that is itself a config dataclass takes a nested mapping (a TOML table) or dotted keys
    (``family.steps``), applied on top of the field's current value.
    """
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    hints = typing.get_type_hints(cls)
    nested: dict[str, dict[str, Any]] = {}
    flat: dict[str, Any] = {}
    for key, value in values.items():
        head, dot, rest = key.partition(".")
        if head in fields and _is_config(hints[head]) and (dot or isinstance(value, Mapping)):
            nested.setdefault(head, {}).update({rest: value} if dot else dict(value))
        elif key in fields and not dot and not _is_config(hints[key]):
            flat[key] = value
        elif key in fields and not dot:
            keys = ", ".join(f"{prefix}{key}.{k}" for k in config_keys(hints[key]))
            raise ConfigError(f"{prefix}{key} is a table; set its keys: {keys}")
        else:
            raise ConfigError(_unknown_key(cls, prefix + key, prefix))
    kwargs = {k: _coerce(prefix + k, v, hints[k]) for k, v in flat.items()}
    for name, sub in nested.items():
        current = getattr(base, name) if base is not None else _default(fields[name])
        kwargs[name] = config_from_mapping(hints[name], sub, base=current, prefix=f"{prefix}{name}.")
    try:
        return dataclasses.replace(base, **kwargs) if base is not None else cls(**kwargs)  # type: ignore[type-var]
    except TypeError as err:
        raise ConfigError(str(err)) from err


def config_keys(cls: type) -> list[str]:
    """Every key ``cls`` accepts, nested ones dotted (``family.steps``), sorted."""
    hints = typing.get_type_hints(cls)
    keys = []
    for field in dataclasses.fields(cls):
        hint = hints[field.name]
        keys += [f"{field.name}.{k}" for k in config_keys(hint)] if _is_config(hint) else [field.name]
    return sorted(keys)


def _is_config(hint: Any) -> bool:
    return isinstance(hint, type) and dataclasses.is_dataclass(hint)


def _default(field: "dataclasses.Field[Any]") -> Any:
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return None if field.default is dataclasses.MISSING else field.default


def _unknown_key(cls: type, key: str, prefix: str) -> str:
    """``unknown config key 'x'; valid keys: ...``, nested tables shown as ``table.{a, b}``, with a close match."""
    hints = typing.get_type_hints(cls)
    shown = []
    for field in dataclasses.fields(cls):
        hint = hints[field.name]
        if _is_config(hint):
            shown.append(f"{prefix}{field.name}.{{{', '.join(config_keys(hint))}}}")
        else:
            shown.append(prefix + field.name)
    everything = [prefix + k for k in config_keys(cls)]
    leaf = key.rpartition(".")[2]
    close = [k for k in everything if k.rpartition(".")[2] == leaf and k != key]
    close = close or difflib.get_close_matches(key, everything, n=1, cutoff=0.75)
    hint = f"; did you mean {close[0]}?" if close else ""
    return f"unknown config key {key!r}; valid keys: {', '.join(sorted(shown))}{hint}"


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
        config = config_from_mapping(cls, read_toml(path), base=config)
    return config_from_mapping(cls, parse_overrides(overrides), base=config)


def read_toml(path: "str | os.PathLike[str]", *, what: str = "config file") -> dict[str, Any]:
    """The parsed TOML file at ``path``; a missing, unreadable or malformed file raises ``ConfigError``."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise ConfigError(f"{what} {str(file)!r} does not exist")
    try:
        return tomllib.loads(file.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"{file.name}: malformed TOML ({err})") from err


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
