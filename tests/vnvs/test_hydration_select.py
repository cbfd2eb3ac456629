"""The select strategy and ${select(...)} in attributes."""

from __future__ import annotations

import pytest
from lxml import etree

from tests.vnvs.conftest import make_request, valuation_of
from vnvs.hydration import HydrationError

REFERENCE = """
<market name="EOD" ccy="USD"><curve name="USD">0.04</curve></market>
<market name="O'Hara" ccy="EUR"><curve name="EUR">0.03</curve></market>
<market name="say &quot;hi&quot; it's" ccy="JPY"/>
<calculator name="bond" engine="fast"/>
<portfolio>
  <instrument name="A" market="EOD"><coupon>1</coupon></instrument>
  <instrument name="B" market="O'Hara"><coupon>2</coupon></instrument>
</portfolio>
"""


def one(hydrate, valuation: str, reference: str = REFERENCE) -> etree._Element:
    root = make_request(f'<group name="g">{valuation}</group>', reference)
    return valuation_of(hydrate(root)[0])


def test_an_absolute_select_merges_the_element_it_finds(hydrate):
    valuation = one(hydrate, '<valuation name="v"><m select="/vnml/project/market[@name=\'EOD\']"/></valuation>')
    market = valuation.find("market")
    assert market is not None and market.get("ccy") == "USD" and market.get("select") is None
    assert market.findtext("curve") == "0.04"


def test_a_dot_select_takes_the_context_node(hydrate):
    valuation = one(hydrate, '<valuation name="v" use="/vnml/project/portfolio/instrument"><i select="."/></valuation>')
    assert valuation.find("instrument").get("name") == "A"


def test_a_relative_select_reads_from_the_context_node(hydrate):
    valuation = one(
        hydrate, '<valuation name="v" use="/vnml/project/portfolio/instrument"><c select="coupon"/></valuation>'
    )
    assert etree.tostring(valuation.find("coupon")) == b"<coupon>1</coupon>"


def test_a_relative_attribute_select_reads_from_the_context_node(hydrate):
    valuation = one(
        hydrate, '<valuation name="v" use="/vnml/project/portfolio/instrument" on="${select(@market)}"/>'
    )
    assert valuation.get("on") == "EOD"


def test_an_attribute_select_of_an_element_is_its_serialisation(hydrate):
    valuation = one(hydrate, '<valuation name="v" calc="${select(/vnml/project/calculator)}"/>')
    assert valuation.get("calc") == '<calculator name="bond" engine="fast"/>'


def test_a_placeholder_with_an_apostrophe_becomes_a_safe_literal(hydrate):
    valuation = one(
        hydrate,
        '<valuation name="v" use="/vnml/project/portfolio/instrument[@name=\'B\']">'
        '<m select="/vnml/project/market[@name=${select(@market)}]"/></valuation>',
    )
    assert valuation.find("market").get("ccy") == "EUR"


def test_a_placeholder_holding_both_quote_kinds_uses_concat(hydrate):
    valuation = one(
        hydrate,
        '<valuation name="v"><m select="/vnml/project/market[@name=${select(/vnml/project/market[3]/@name)}]"/>'
        "</valuation>",
    )
    assert valuation.find("market").get("ccy") == "JPY"


def test_the_first_alternative_that_finds_one_element_wins_even_if_a_later_one_would_too(hydrate):
    valuation = one(
        hydrate, '<valuation name="v"><c select="/vnml/project/calculator | /vnml/project/market[1]"/></valuation>'
    )
    assert valuation.find("calculator") is not None and valuation.find("market") is None


def test_alternatives_where_the_first_fails_fall_through(hydrate):
    valuation = one(
        hydrate,
        '<valuation name="v"><m select="/vnml/project/market[@name=\'none\'] | /vnml/project/market[1]"/></valuation>',
    )
    assert valuation.find("market").get("name") == "EOD"


def test_the_first_alternative_wins_with_a_placeholder(hydrate):
    valuation = one(
        hydrate,
        '<valuation name="v" use="/vnml/project/portfolio/instrument[1]">'
        '<m select="/vnml/project/market[@name=${select(@market)}] | /vnml/project/market[2]"/></valuation>',
    )
    assert valuation.find("market").get("name") == "EOD"


def test_an_alternative_may_use_a_descendant_wildcard(hydrate):
    valuation = one(hydrate, '<valuation name="v"><c select="//nothing | //*[@engine=\'fast\']"/></valuation>')
    assert valuation.find("calculator").get("engine") == "fast"


def test_a_bar_inside_a_predicate_is_not_an_alternative(hydrate):
    valuation = one(
        hydrate,
        "<valuation name=\"v\"><m select=\"/vnml/project/market[@name='EOD' or @name='a|b']\"/></valuation>",
    )
    assert valuation.find("market").get("name") == "EOD"


def test_no_alternative_finding_exactly_one_is_an_error_listing_each(hydrate):
    with pytest.raises(HydrationError, match="alternative 1 found no node; alternative 2 found 3 nodes"):
        one(hydrate, '<valuation name="v"><m select="/vnml/nothing | /vnml/project/market"/></valuation>')


def test_vn_link_selects_a_single_node_and_copies_it_without_merging(hydrate):
    valuation = one(
        hydrate,
        '<valuation name="v"><x keep="no" select="vn:link(/vnml/project/portfolio, instrument[2])"/></valuation>',
    )
    instrument = valuation.find("instrument")
    assert instrument.get("name") == "B" and instrument.get("keep") is None


def test_vn_link_with_a_dot_source_reads_the_context_node(hydrate):
    valuation = one(
        hydrate,
        '<valuation name="v" use="/vnml/project/portfolio/instrument[2]"><c select="vn:link(., coupon)"/></valuation>',
    )
    assert valuation.findtext("coupon") == "2"


def test_vn_link_to_a_value_sets_the_text(hydrate):
    valuation = one(hydrate, '<valuation name="v"><n select="vn:link(/vnml/project/calculator, @engine)"/></valuation>')
    assert valuation.findtext("n") == "fast"


def test_an_attribute_result_sets_the_element_text_and_keeps_the_tag(hydrate):
    valuation = one(hydrate, '<valuation name="v"><ccy a="1" select="/vnml/project/market[1]/@ccy"/></valuation>')
    ccy = valuation.find("ccy")
    assert ccy.text == "USD" and ccy.get("a") == "1" and ccy.get("select") is None


def test_an_attribute_result_on_an_element_with_children_is_an_error(hydrate):
    with pytest.raises(HydrationError, match="has children"):
        one(hydrate, '<valuation name="v"><ccy select="/vnml/project/market[1]/@ccy"><x/></ccy></valuation>')


def test_a_select_that_finds_nothing_is_an_error_naming_the_expression_path_and_group(hydrate):
    root = make_request(
        '<group name="g"/><group name="h"><valuation name="v"><m select="/vnml/nope"/></valuation></group>'
    )
    root.find("project/group").append(etree.fromstring('<valuation name="w"/>'))
    with pytest.raises(HydrationError) as caught:
        hydrate(root, group=1)
    error = caught.value
    assert error.expression == "/vnml/nope"
    assert error.element_path == "/vnml/project/group[2]/valuation[1]/m"
    assert (error.group.name, error.group.index) == ("h", 1)
    assert "/vnml/nope" in error.message and "group[2]/valuation[1]/m" in error.message and "'h'" in error.message


def test_a_select_that_finds_several_is_an_error(hydrate):
    with pytest.raises(HydrationError, match="found 3 nodes"):
        one(hydrate, '<valuation name="v"><m select="/vnml/project/market"/></valuation>')


def test_an_xpath_syntax_error_is_a_hydration_error(hydrate):
    with pytest.raises(HydrationError, match="invalid XPath"):
        one(hydrate, '<valuation name="v"><m select="/vnml/[[["/></valuation>')


def test_an_unknown_namespace_prefix_is_a_hydration_error(hydrate):
    with pytest.raises(HydrationError, match="unknown namespace prefix"):
        one(hydrate, '<valuation name="v"><m select="/zz:vnml"/></valuation>')


def test_vn_link_with_the_wrong_argument_count_is_an_error(hydrate):
    with pytest.raises(HydrationError, match="wrong argument count"):
        one(hydrate, '<valuation name="v"><m select="vn:link(/vnml/project)"/></valuation>')


def test_selected_content_is_hydrated_again(hydrate):
    reference = '<model name="m"><base select="/vnml/project/calculator"/></model><calculator name="c"/>'
    valuation = one(hydrate, '<valuation name="v"><x select="/vnml/project/model"/></valuation>', reference)
    assert valuation.find("model/calculator").get("name") == "c"


def test_a_select_loop_is_detected(hydrate):
    reference = '<a name="a" select="/vnml/project/b"/><b name="b" select="/vnml/project/a"/>'
    with pytest.raises(HydrationError, match="select cycle"):
        one(hydrate, '<valuation name="v"><x select="/vnml/project/a"/></valuation>', reference)


def test_content_that_selects_itself_is_a_cycle_caught_before_it_grows(hydrate):
    twice = '<x select="/vnml/project/portfolio/a"/><y select="/vnml/project/portfolio/a"/>'
    reference = f'<portfolio><a name="a">{twice}</a></portfolio>'
    with pytest.raises(HydrationError, match="select cycle"):
        one(hydrate, '<valuation name="v"><z select="/vnml/project/portfolio/a"/></valuation>', reference)


def test_a_function_that_keeps_calling_itself_stops_at_the_pass_limit(hydrate, install_plugin):
    install_plugin("again", "def function(ctx):\n    return 'x${again()}'\n")
    with pytest.raises(HydrationError, match="did not settle after 4 passes"):
        hydrate(make_request('<group name="g"><valuation name="v" d="${again()}"/></group>'), max_passes=4)
