"""The href strategy: files confined to roots, S3 through boto3, refusals, cycles and limits."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.vnvs.conftest import EOD_MARKET, make_request, valuation_of
from vnvs.hydration import HydrationError

VALUATION = '<group name="g"><valuation name="v"><m select="/vnml/project/market"/></valuation></group>'


def market_request(href: str, extra: str = "") -> str:
    return f'<market name="EOD" href="{href}" {extra}><curve name="EUR">0.03</curve></market>'


def test_a_relative_href_merges_the_matching_element_of_a_file(hydrate, tmp_path: Path):
    (tmp_path / "eod.xml").write_bytes(EOD_MARKET)
    root = make_request(VALUATION, market_request("eod.xml", 'ccy="USD"'))
    market = valuation_of(hydrate(root)[0]).find("market")
    assert market.get("href") is None and market.get("ccy") == "USD"
    assert [(c.get("name"), c.text) for c in market] == [("EUR", "0.03"), ("USD", "0.04")]


def test_a_file_url_href_is_read(hydrate, tmp_path: Path):
    (tmp_path / "eod.xml").write_bytes(EOD_MARKET)
    root = make_request(VALUATION, market_request((tmp_path / "eod.xml").as_uri()))
    assert valuation_of(hydrate(root)[0]).find("market/curve[@name='USD']") is not None


def test_an_s3_href_is_merged(hydrate, s3_factory, s3_bucket):
    s3_bucket("markets", {"eod/market.xml": EOD_MARKET})
    root = make_request(VALUATION, market_request("s3://markets/eod/market.xml"))
    market = valuation_of(hydrate(root, s3=s3_factory, s3_buckets=("markets",))[0]).find("market")
    assert market.findtext("curve[@name='USD']") == "0.04"


def test_a_missing_s3_object_is_a_failed_fetch(hydrate, s3_factory, s3_bucket):
    s3_bucket("markets", {})
    root = make_request(VALUATION, market_request("s3://markets/absent.xml"))
    with pytest.raises(HydrationError, match="fetch failed"):
        hydrate(root, s3=s3_factory)


def test_a_bucket_not_in_the_list_is_refused(hydrate, s3_factory):
    root = make_request(VALUATION, market_request("s3://other/eod.xml"))
    with pytest.raises(HydrationError, match="bucket 'other' is not allowed") as caught:
        hydrate(root, s3=s3_factory, s3_buckets=("markets",))
    assert caught.value.expression == "s3://other/eod.xml"
    assert caught.value.element_path == "/vnml/project/market"
    assert caught.value.group is None


def test_a_path_escaping_the_roots_with_dotdot_is_refused(hydrate, tmp_path: Path):
    root_dir = tmp_path / "root"
    root_dir.mkdir()
    (tmp_path / "eod.xml").write_bytes(EOD_MARKET)
    root = make_request(VALUATION, market_request("../eod.xml"))
    with pytest.raises(HydrationError, match=r"'\.\.' is not allowed"):
        hydrate(root, file_roots=(root_dir,))


def test_a_symlink_escaping_the_roots_is_refused(hydrate, tmp_path: Path):
    root_dir = tmp_path / "root"
    root_dir.mkdir()
    (tmp_path / "secret.xml").write_bytes(EOD_MARKET)
    (root_dir / "link.xml").symlink_to(tmp_path / "secret.xml")
    root = make_request(VALUATION, market_request("link.xml"))
    with pytest.raises(HydrationError, match="outside the allowed file roots"):
        hydrate(root, file_roots=(root_dir,))


def test_file_access_is_refused_when_no_roots_are_configured(hydrate, tmp_path: Path):
    (tmp_path / "eod.xml").write_bytes(EOD_MARKET)
    root = make_request(VALUATION, market_request((tmp_path / "eod.xml").as_uri()))
    with pytest.raises(HydrationError, match="no file roots"):
        hydrate(root, file_roots=())


@pytest.mark.parametrize("href", ["http://example.com/eod.xml", "ftp://host/eod.xml", "data:text/xml,x"])
def test_other_schemes_are_refused(hydrate, href: str):
    with pytest.raises(HydrationError, match=r"scheme '\w+' is not allowed"):
        hydrate(make_request(VALUATION, market_request(href)))


def test_a_missing_file_is_a_failed_fetch(hydrate):
    with pytest.raises(HydrationError, match="fetch failed"):
        hydrate(make_request(VALUATION, market_request("absent.xml")))


def test_an_unparsable_fetched_document_is_a_hydration_error(hydrate, tmp_path: Path):
    (tmp_path / "bad.xml").write_bytes(b"<market><unclosed></market>")
    with pytest.raises(HydrationError, match="not well-formed"):
        hydrate(make_request(VALUATION, market_request("bad.xml")))


def test_a_fetched_document_with_a_doctype_is_refused(hydrate, tmp_path: Path):
    (tmp_path / "dtd.xml").write_bytes(b'<!DOCTYPE m [<!ENTITY e "x">]><market name="EOD">&e;</market>')
    with pytest.raises(HydrationError, match="DOCTYPE"):
        hydrate(make_request(VALUATION, market_request("dtd.xml")))


def test_a_fetched_document_over_the_size_limit_is_refused(hydrate, tmp_path: Path):
    (tmp_path / "eod.xml").write_bytes(EOD_MARKET)
    with pytest.raises(HydrationError, match="larger than 20 bytes") as caught:
        hydrate(make_request(VALUATION, market_request("eod.xml")), max_fetch_bytes=20)
    # A limit, not a broken source: HYDRATION_LIMIT naming the setting, never retried.
    assert (caught.value.reason, caught.value.metadata["limit"]) == ("HYDRATION_LIMIT", "HYDRATION_MAX_FETCH_BYTES")


def test_fetches_beyond_the_limit_are_refused(hydrate, tmp_path: Path):
    for name in ("a", "b"):
        (tmp_path / f"{name}.xml").write_bytes(f'<market name="{name}"/>'.encode())
    reference = '<market name="a" href="a.xml"/><market name="b" href="b.xml"/>'
    with pytest.raises(HydrationError, match="more than 1 fetches") as caught:
        hydrate(make_request(VALUATION, reference), max_fetches=1)
    assert (caught.value.reason, caught.value.metadata["limit"]) == ("HYDRATION_LIMIT", "HYDRATION_MAX_FETCHES")


def test_a_fetched_document_is_read_once_per_request(engine_factory, tmp_path: Path):
    (tmp_path / "eod.xml").write_bytes(EOD_MARKET)
    reference = '<market name="EOD" href="eod.xml"/><model name="EOD"><market name="EOD" href="eod.xml"/></model>'
    engine = engine_factory(max_fetches=1)
    root = make_request(VALUATION.replace("/vnml/project/market", "/vnml/project/market[1]"), reference)
    engine.prepare(root)
    assert engine.fetcher.fetch_count == 1
    assert root.find("project/model/market/curve") is not None


def test_an_href_cycle_is_detected(hydrate, tmp_path: Path):
    (tmp_path / "a.xml").write_bytes(b'<market name="EOD" href="b.xml"/>')
    (tmp_path / "b.xml").write_bytes(b'<market name="EOD" href="a.xml"/>')
    with pytest.raises(HydrationError, match="href cycle"):
        hydrate(make_request(VALUATION, market_request("a.xml")))


def test_an_href_chain_is_followed(hydrate, tmp_path: Path):
    (tmp_path / "a.xml").write_bytes(b'<market name="EOD" from="a" href="b.xml"/>')
    (tmp_path / "b.xml").write_bytes(EOD_MARKET)
    root = make_request(VALUATION, market_request("a.xml"))
    market = valuation_of(hydrate(root)[0]).find("market")
    assert market.get("from") == "a" and market.find("curve[@name='USD']") is not None


def test_a_fetched_document_without_a_matching_element_is_an_error(hydrate, tmp_path: Path):
    (tmp_path / "eod.xml").write_bytes(b"<lib><model/></lib>")
    with pytest.raises(HydrationError, match="no matching <market>"):
        hydrate(make_request(VALUATION, market_request("eod.xml")))


def test_a_select_then_href_then_select_chain_resolves_inside_a_clone(hydrate, tmp_path: Path):
    (tmp_path / "curve.xml").write_bytes(b'<curve name="USD"><calc select="/vnml/project/calculator"/></curve>')
    reference = '<model name="m"><curve name="USD" href="${select(/vnml/project/calculator/@file)}"/></model>'
    reference += '<calculator name="c" file="curve.xml"/>'
    valuation = '<group name="g"><valuation name="v"><x select="/vnml/project/model"/></valuation></group>'
    result = valuation_of(hydrate(make_request(valuation, reference))[0])
    assert result.find("model/curve/calculator").get("name") == "c"
