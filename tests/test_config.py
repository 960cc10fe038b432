from dataclasses import dataclass
from typing import Literal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modlens.config import config_from_mapping, load_config, parse_overrides
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
