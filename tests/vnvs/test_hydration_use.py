"""The use strategy: fan-out of valuations and groups."""

from __future__ import annotations

import pytest

from tests.vnvs.conftest import make_request, valuation_of
from vnvs.hydration import HydrationError

PORTFOLIOS = """
<portfolio name="p1"><instrument name="A"/><instrument name="B"/></portfolio>
<portfolio name="p2"><instrument name="C"/></portfolio>
"""


def test_vn_link_clones_once_per_child_of_every_matched_node(hydrate):
    root = make_request(
        '<group name="g"><valuation name="v" use="vn:link(/vnml/project/portfolio, instrument)">'
        '<i select="."/></valuation></group>',
        PORTFOLIOS,
    )
    documents = hydrate(root)
    assert [valuation_of(d).find("instrument").get("name") for d in documents] == ["A", "B", "C"]
    assert [d.task_id for d in documents] == ["1", "2", "3"]
    assert all(valuation_of(d).get("use") is None for d in documents)


def test_a_plain_xpath_use_clones_once_per_matched_element(hydrate):
    root = make_request(
        '<group name="g"><valuation name="v" use="//instrument[@name != \'B\']" of="${select(@name)}"/></group>',
        PORTFOLIOS,
    )
    assert [valuation_of(d).get("of") for d in hydrate(root)] == ["A", "C"]


def test_a_group_use_repeats_every_valuation_per_matched_node(hydrate):
    root = make_request(
        '<group name="g" use="/vnml/project/portfolio"><valuation name="x" p="${select(@name)}"/>'
        '<valuation name="y" use="instrument" i="${select(@name)}"/></group>',
        PORTFOLIOS,
    )
    documents = hydrate(root)
    assert [(d.valuation_name, valuation_of(d).get("p") or valuation_of(d).get("i")) for d in documents] == [
        ("x", "p1"),
        ("y", "A"),
        ("y", "B"),
        ("x", "p2"),
        ("y", "C"),
    ]


def test_zero_clones_is_an_error(hydrate):
    root = make_request('<group name="g"><valuation name="v" use="/vnml/project/nothing"/></group>')
    with pytest.raises(HydrationError, match="zero clones") as caught:
        hydrate(root)
    assert caught.value.element_path == "/vnml/project/group/valuation"


def test_a_use_that_finds_values_instead_of_elements_is_an_error(hydrate):
    root = make_request('<group name="g"><valuation name="v" use="//instrument/@name"/></group>', PORTFOLIOS)
    with pytest.raises(HydrationError, match="must find elements"):
        hydrate(root)


def test_too_many_clones_is_an_error(hydrate):
    root = make_request('<group name="g"><valuation name="v" use="//instrument"/></group>', PORTFOLIOS)
    with pytest.raises(HydrationError, match="more than 2 clones"):
        hydrate(root, max_clones_per_group=2)


def test_a_group_without_valuations_is_an_error(hydrate):
    root = make_request('<group name="g"><note/></group>')
    with pytest.raises(HydrationError, match="no valuation"):
        hydrate(root)
