from dataclasses import dataclass
from typing import Literal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modlens.config import config_from_mapping, config_keys, load_config, parse_overrides
from modlens.errors import ConfigError


@dataclass(frozen=True, kw_only=True)
class Example:
    n: int = 1
    rate: float = 0.5
    name: str = "x"
    flag: bool = False
    steps: tuple[int, ...] = (1, 2)
    kind: Literal["a", "b"] = "a"
    limit: int | None = None


def test_overrides_are_coerced_to_field_types() -> None:
    cfg = load_config(
        Example, overrides=["n=3", "rate=0.25", "name=y", "flag=true", "steps=4,5,6", "kind=b", "limit=none"]
    )
    assert cfg == Example(n=3, rate=0.25, name="y", flag=True, steps=(4, 5, 6), kind="b", limit=None)


def test_toml_then_overrides(tmp_path) -> None:
    file = tmp_path / "c.toml"
    file.write_text('n = 7\nsteps = [9]\nkind = "b"\n')
    cfg = load_config(Example, path=file, overrides=["n=8"])
    assert (cfg.n, cfg.steps, cfg.kind) == (8, (9,), "b")


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"m": 1}, "unknown config key 'm'; valid keys: flag, kind, limit, n, name, rate, steps"),
        ({"n": 1.5}, "n must be int"),
        ({"n": True}, "n must be int"),
        ({"flag": "maybe"}, "flag must be bool"),
        ({"kind": "c"}, "kind must be one of 'a', 'b'"),
        ({"name": 3}, "name must be str"),
        ({"steps": 3}, "steps must be a list"),
    ],
)
def test_bad_values_name_the_key(values: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config_from_mapping(Example, values)


@given(st.text(max_size=20))
def test_override_parser_accepts_or_rejects_cleanly(text: str) -> None:
    try:
        parsed = parse_overrides([text])
    except ConfigError:
        assert "=" not in text or not text.partition("=")[0].strip()
        return
    assert list(parsed) == [text.partition("=")[0].strip()]


@dataclass(frozen=True, kw_only=True)
class Inner:
    steps: int = 10
    rate: float = 0.1


@dataclass(frozen=True, kw_only=True)
class Outer:
    name: str = "x"
    inner: Inner = Inner(steps=20)


def test_nested_configs_take_dotted_overrides_and_toml_tables(tmp_path) -> None:
    file = tmp_path / "c.toml"
    file.write_text('name = "y"\n[inner]\nrate = 0.5\n')
    cfg = load_config(Outer, path=file, overrides=["inner.steps=7"])
    assert cfg == Outer(name="y", inner=Inner(steps=7, rate=0.5))
    # a nested key changes only itself: the other keys keep the outer config's values, not the inner defaults
    assert load_config(Outer, overrides=["inner.rate=0.2"]).inner == Inner(steps=20, rate=0.2)
    assert config_keys(Outer) == ["inner.rate", "inner.steps", "name"]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            "inner.step=3",
            "unknown config key 'inner.step'; valid keys: inner.rate, inner.steps; did you mean inner.steps?",
        ),
        ("steps=3", "unknown config key 'steps'; valid keys: inner.{rate, steps}, name; did you mean inner.steps?"),
        ("inner=3", "inner is a table; set its keys: inner.rate, inner.steps"),
        ("inner.steps=many", "inner.steps must be int, got 'many'"),
        ("name.x=1", "unknown config key 'name.x'"),
    ],
)
def test_wrong_nested_keys_are_one_line_naming_the_right_ones(override: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(Outer, overrides=[override])
    assert message in str(err.value) and "\n" not in str(err.value)
