"""Folding results into the working document and assembling the response."""

from __future__ import annotations

import pytest
from lxml import etree

from tests.vnvs.conftest import make_request, valuation_of
from vncommon.xmlsafe import parse_xml
from vnvs.assembly import InvalidResult, apply_results, assemble_response

BODY = (
    '<group name="price"><valuation name="v" use="//instrument"><i select="."/><price/></valuation></group>'
    '<group name="risk"><valuation name="r" use="vn:link(/vnml/project/group[1], valuation)">'
    '<p select="./price"/></valuation></group>'
)
REFERENCE = '<portfolio><instrument name="A"/><instrument name="B"/></portfolio><meta/>'


def priced(documents, prices):
    results = []
    for document, price in zip(documents, prices, strict=True):
        task = parse_xml(document.xml)
        task.find("project/group/valuation/price").text = price
        results.append(etree.tostring(task))
    return results


def test_apply_results_makes_results_visible_to_the_next_groups_vn_link(engine_factory):
    root = make_request(BODY, REFERENCE)
    engine = engine_factory()
    engine.prepare(root)
    apply_results(root, 0, priced(engine.hydrate_group(root, 0), ["1.5", "2.5"]))
    assert [valuation_of(d).findtext("price") for d in engine.hydrate_group(root, 1)] == ["1.5", "2.5"]


def test_apply_results_works_without_hydrating_the_group_first(engine_factory):
    root = make_request(BODY, REFERENCE)
    engine = engine_factory()
    engine.prepare(root)
    apply_results(root, 0, [b'<valuation name="v"><price>7</price></valuation>'] * 3)
    assert [valuation_of(d).findtext("price") for d in engine.hydrate_group(root, 1)] == ["7", "7", "7"]


def test_an_unparsable_result_is_an_invalid_result_error():
    root = make_request(BODY, REFERENCE)
    with pytest.raises(InvalidResult) as caught:
        apply_results(root, 0, [b"<valuation>"])
    assert caught.value.reason == "INVALID_RESULT"


def test_a_result_document_without_one_valuation_is_an_invalid_result():
    with pytest.raises(InvalidResult, match="holds 0"):
        apply_results(make_request(BODY, REFERENCE), 0, [b"<vnml><project/></vnml>"])


def test_the_response_wraps_the_project_without_reference_data_and_with_results_in_task_order(engine_factory):
    root = make_request(BODY, REFERENCE)
    engine = engine_factory()
    engine.prepare(root)
    apply_results(root, 0, priced(engine.hydrate_group(root, 0), ["1", "2"]))
    apply_results(root, 1, [b'<valuation name="r" n="1"/>', b'<valuation name="r" n="2"/>'])
    response = assemble_response(root, "req-9")
    parsed = parse_xml(response)
    assert parsed.tag == "vnml-response"
    assert parsed.attrib == {"requestId": "req-9", "status": "succeeded"}
    project = parsed.find("project")
    assert project.get("name") == "p"
    assert [c.tag for c in project] == ["meta", "group", "group"]
    assert [v.findtext("price") for v in project.findall("group[1]/valuation")] == ["1", "2"]
    assert [v.get("n") for v in project.findall("group[2]/valuation")] == ["1", "2"]
    assert assemble_response(root, "req-9") == response
