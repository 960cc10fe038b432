"""Component addresses: parsing, printing, ranges, enumeration, hook names."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modlens.components import (
    KINDS,
    Component,
    ComponentError,
    enumerate_components,
    hook_name,
    parse_component,
    parse_components,
    select_components,
)
from modlens.models import ModelSpec

SPEC = ModelSpec(
    architecture="GPTNeoXForCausalLM",
    n_layers=3,
    n_heads=4,
    n_kv_heads=4,
    d_model=32,
    d_head=8,
    d_mlp=128,
    d_vocab=50,
    n_ctx=32,
)

components = st.one_of(
    st.builds(Component, st.integers(0, 10_000), st.sampled_from(["head", "neuron"]), st.integers(0, 10_000)),
    st.builds(Component, st.integers(0, 10_000), st.sampled_from(["attn", "mlp"])),
)


@given(components)
def test_print_then_parse_is_the_identity(c: Component) -> None:
    assert parse_component(str(c)) == c


@given(st.text(max_size=20))
def test_parser_accepts_or_raises_component_error(text: str) -> None:
    try:
        c = parse_component(text)
    except ComponentError as err:
        assert "unknown component" in str(err)
    else:
        assert str(c) == str(parse_component(str(c)))
        assert c.kind in KINDS


@given(components)
def test_range_check_raises_exactly_when_out_of_range(c: Component) -> None:
    limit = {"head": SPEC.n_heads, "neuron": SPEC.d_mlp}.get(c.kind)
    inside = c.layer < SPEC.n_layers and (limit is None or (c.index or 0) < limit)
    if inside:
        assert c.check(SPEC) is c
    else:
        with pytest.raises(ComponentError, match=r"0\.\.\d+"):
            c.check(SPEC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("L3H2", Component(3, "head", 2)),
        ("L0.attn", Component(0, "attn")),
        ("L1.mlp", Component(1, "mlp")),
        ("L3N17", Component(3, "neuron", 17)),
        (" L2H0 ", Component(2, "head", 0)),
    ],
)
def test_parse_examples(text: str, expected: Component) -> None:
    assert parse_component(text) == expected


@pytest.mark.parametrize("text", ["", "L", "H2", "L3H", "L-1H2", "l3h2", "L3.ATTN", "L3.head", "L3H2N1", "3H2"])
def test_malformed_addresses_name_the_format(text: str) -> None:
    with pytest.raises(ComponentError, match="L<layer>H<head>"):
        parse_component(text)


def test_range_errors_name_the_valid_range() -> None:
    with pytest.raises(ComponentError, match=r"layers 0\.\.2"):
        parse_component("L3H0", SPEC)
    with pytest.raises(ComponentError, match=r"heads 0\.\.3"):
        parse_component("L0H4", SPEC)
    with pytest.raises(ComponentError, match=r"neurons 0\.\.127"):
        parse_component("L0N128", SPEC)


def test_inconsistent_components_are_rejected() -> None:
    for bad in [(0, "head", None), (0, "attn", 1), (-1, "mlp", None), (0, "neuron", -2)]:
        with pytest.raises(ComponentError):
            Component(*bad)  # type: ignore[arg-type]


def test_enumeration_counts_and_order() -> None:
    heads = enumerate_components(SPEC, "head")
    assert len(heads) == 12 and heads[0] == Component(0, "head", 0) and heads[-1] == Component(2, "head", 3)
    assert len(enumerate_components(SPEC, "neuron")) == 3 * 128
    assert [str(c) for c in enumerate_components(SPEC, "mlp")] == ["L0.mlp", "L1.mlp", "L2.mlp"]
    assert len(select_components(SPEC, "all")) == 12 + 3 + 3 + 384
    with pytest.raises(ComponentError, match="heads, attn, mlp, neurons, resid, all"):
        select_components(SPEC, "blocks")


def test_hook_names() -> None:
    assert [hook_name(c) for c in parse_components(["L1H2", "L1.attn", "L1.mlp", "L1N3"])] == [
        "blocks.1.attn.hook_z",
        "blocks.1.hook_attn_out",
        "blocks.1.hook_mlp_out",
        "blocks.1.mlp.hook_post",
    ]


def test_components_sort_by_layer_first() -> None:
    assert sorted(parse_components(["L1H0", "L0N5", "L0H3"]))[0].layer == 0
