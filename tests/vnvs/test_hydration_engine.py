"""The engine end to end: the SPEC section 7 example, task XML shape, re-hydration, limits, settings."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from lxml import etree

from tests.vnvs.conftest import EOD_MARKET, SPEC_EXAMPLE, make_request, valuation_of
from vncommon.errors import ConfigError
from vncommon.xmlsafe import parse_xml
from vnvs.assembly import apply_results
from vnvs.hydration import HydrationError, HydrationSettings


@pytest.fixture
def spec_engine(engine_factory, s3_factory, s3_bucket):
    s3_bucket("bucket", {"markets/eod.xml": EOD_MARKET})
    return engine_factory(s3=s3_factory, s3_buckets=("bucket",))


def test_the_spec_example_hydrates_each_portfolio_instrument_into_a_task(spec_engine):
    root = parse_xml(SPEC_EXAMPLE)
    spec_engine.prepare(root)
    documents = spec_engine.hydrate_group(root, 0)
    assert [(d.task_id, d.valuation_name, d.group_name) for d in documents] == [
        ("1", "bond", "price"),
        ("2", "bond", "price"),
    ]
    valuation = valuation_of(documents[1])
    assert valuation.find("instrument").get("name") == "UST30"
    assert valuation.findtext("market/curve[@name='USD']") == "0.04"
    assert valuation.find("calculator").get("name") == "bond"
    assert valuation.findtext("analytics/evaluation/date") == "2025-06-30"
    assert valuation.find("vndb").get("externalId") == "2"


def test_the_spec_example_second_group_reads_the_first_groups_results(spec_engine):
    root = parse_xml(SPEC_EXAMPLE)
    spec_engine.prepare(root)
    results = []
    for document in spec_engine.hydrate_group(root, 0):
        result = valuation_of(document)
        result.find("analytics/price/amount").text = f"10{document.task_id}.00"
        results.append(etree.tostring(result))
    apply_results(root, 0, results)
    risk = spec_engine.hydrate_group(root, 1)
    assert [valuation_of(d).findtext("amount") for d in risk] == ["101.00", "102.00"]
    assert [valuation_of(d).find("instrument").get("name") for d in risk] == ["UST10", "UST30"]
    assert all(len(valuation_of(d).findall("vndb")) == 1 for d in risk)


def test_task_xml_drops_reference_data_and_other_groups_but_keeps_other_project_children(hydrate):
    root = make_request(
        '<group name="a"><valuation name="x"/></group>'
        '<group name="b" kind="risk"><setting>1</setting><valuation name="y"/><valuation name="z"/><after/></group>',
        '<market/><model/><calculator/><portfolio/><meta owner="desk"/>',
    )
    document = hydrate(root, group=1)[1]
    task = parse_xml(document.xml)
    assert document.xml.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    project = task.find("project")
    assert [c.tag for c in project] == ["meta", "group"]
    group = project.find("group")
    assert group.attrib == {"name": "b", "kind": "risk"}
    assert [c.tag for c in group] == ["setting", "valuation", "after"]
    assert [c.tag for c in group.find("valuation")] == ["vndb"]
    assert group.find("valuation").get("name") == "z"


def test_shared_parts_of_the_task_are_hydrated_too(hydrate):
    root = make_request(
        '<group name="g" by="${requestId()}"><valuation name="x"/></group>',
        '<meta><calc select="/vnml/project/calculator"/></meta><calculator name="c"/>',
    )
    task = parse_xml(hydrate(root)[0].xml)
    assert task.find("project/group").get("by") == "req-1"
    assert task.find("project/meta/calculator").get("name") == "c"


def test_hydrating_a_group_again_gives_the_same_task_ids_and_documents(engine_factory):
    body = '<group name="g"><valuation name="v" use="//instrument"><i select="."/></valuation></group>'
    reference = '<portfolio><instrument name="A"/><instrument name="B"/><instrument name="C"/></portfolio>'
    root = make_request(body, reference)
    engine = engine_factory()
    engine.prepare(root)
    first = engine.hydrate_group(root, 0)
    again = engine.hydrate_group(root, 0)
    fresh_root = make_request(body, reference)
    fresh = engine_factory()
    fresh.prepare(fresh_root)
    assert [d.task_id for d in first] == ["1", "2", "3"]
    assert first == again == fresh.hydrate_group(fresh_root, 0)


def test_hydrate_group_leaves_the_working_document_for_apply_results_to_update(hydrate):
    body = '<group name="g"><valuation name="v" use="//instrument"/></group>'
    root = make_request(body, "<instrument/><instrument/>")
    before = etree.tostring(root)
    assert len(hydrate(root)) == 2
    assert etree.tostring(root) == before


def test_a_failed_group_leaves_the_working_document_untouched(hydrate):
    root = make_request('<group name="g"><valuation name="v" use="//i"><x select="/none"/></valuation></group>', "<i/>")
    before = etree.tostring(root)
    with pytest.raises(HydrationError):
        hydrate(root)
    assert etree.tostring(root) == before


def test_task_xml_over_the_group_byte_limit_is_an_error(hydrate):
    root = make_request('<group name="g"><valuation name="v" use="//i"/></group>', "<i/>" * 10)
    with pytest.raises(HydrationError, match="exceeds 500 bytes"):
        hydrate(root, max_group_task_bytes=500)


def test_copying_beyond_the_node_budget_is_an_error(hydrate):
    reference = "<big>" + "<n/>" * 200 + "</big>"
    body = '<group name="g"><valuation name="v"><a select="/vnml/project/big"/></valuation></group>'
    root = make_request(body, reference)
    with pytest.raises(HydrationError, match="copied more than"):
        hydrate(root, max_group_task_bytes=16 * 100)


def test_an_unknown_group_index_is_a_hydration_error(hydrate):
    with pytest.raises(HydrationError, match="no group index 3"):
        hydrate(make_request('<group name="g"><valuation name="v"/></group>'), group=3)


def test_settings_are_read_from_the_environment(tmp_path: Path):
    settings = HydrationSettings.from_env(
        {
            "HYDRATION_FILE_ROOTS": f"{tmp_path},{tmp_path}",
            "HYDRATION_S3_BUCKETS": "a-bucket, other.bucket",
            "HYDRATION_MAX_PASSES": "4",
        }
    )
    assert settings.file_roots == (tmp_path, tmp_path)
    assert settings.s3_buckets == ("a-bucket", "other.bucket")
    assert settings.max_passes == 4 and settings.max_fetches == 64


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("HYDRATION_FILE_ROOTS", "relative/dir"),
        ("HYDRATION_FILE_ROOTS", "/does/not/exist"),
        ("HYDRATION_S3_BUCKETS", "Bad_Bucket"),
        ("HYDRATION_MAX_FETCHES", "many"),
        ("HYDRATION_MAX_PASSES", "0"),
    ],
)
def test_a_bad_setting_raises_config_error_naming_the_variable(name: str, value: str):
    with pytest.raises(ConfigError, match=name):
        HydrationSettings.from_env({name: value})


def test_the_hydrated_group_log_line_carries_its_fields(hydrate, caplog: pytest.LogCaptureFixture):
    root = make_request('<group name="g"><valuation name="a"/><valuation name="b"/></group>')
    with caplog.at_level(logging.INFO, logger="vnvs.hydration.engine"):
        hydrate(root)
    [record] = [r for r in caplog.records if r.getMessage() == "hydrated group"]
    assert record.fields == {"groupIndex": 0, "tasks": 2}  # type: ignore[attr-defined]
