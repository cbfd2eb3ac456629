"""The streaming check of a submission gives exactly the verdict of `count_groups(parse_xml(...))`, group
count, message, line and element path, however the bytes are cut into chunks, and holds no tree."""

from __future__ import annotations

import resource

import pytest

from bench.requests import sized_request
from tests.common.vnml_documents import ACCEPTED, REFUSED
from vncommon import vnmlscan
from vncommon.errors import VnError
from vncommon.vnml import count_groups
from vncommon.vnmlscan import check_request
from vncommon.xmlsafe import XmlLimits, parse_xml

DOCUMENTS = [case.xml for case in REFUSED + ACCEPTED] + [
    b"<request><project><group><valuation/></group></project></request>",
    b"<vnml><project/><project/></vnml>",
    b"<vnml><project><calculator/></project></vnml>",
    b"<vnml><project><group name='g'><note/></group></project></vnml>",
    b"<vnml>\n<extra><project><group/></project></extra>\n<project name='p'>\n"
    b"<portfolio><i><c/><c/></i><i/></portfolio>"
    b"\n<group name='a'><valuation><deep><deeper/></deep></valuation><valuation/></group>\n<!-- c --><?pi x?>"
    b"\n<group name='b'><x/><y/>\n</group>\n</project></vnml>",
    b"<vnml><project><group><valuation/></group><group><valuation/></group><group><v:valuation xmlns:v='u'/>"
    b"<valuation/></group></project></vnml>",
    b'<?xml version="1.0" encoding="UTF-16"?><vnml><project><group><valuation/></group></project></vnml>'.decode()
    .encode("utf-16"),
    b"<vnml><project><group><valuation></group></project></vnml>",
    b"<vnml><project><group><valuation/></group></project></vnml><trailing/>",
    b'<!DOCTYPE vnml SYSTEM "file:///etc/passwd"><vnml/>',
    b"<vnml><project><group><valuation>&ent;</valuation></group></project></vnml>",
    b"   ",
]


def _verdict(check: object) -> tuple[str, object]:
    try:
        return "groups", check()  # type: ignore[operator]
    except VnError as exc:
        return exc.reason, (exc.message, dict(exc.metadata))


@pytest.mark.parametrize("chunk", [5, 7, 64, 64 * 1024])
@pytest.mark.parametrize("data", DOCUMENTS)
def test_the_stream_judges_every_document_as_the_tree_does(
    data: bytes, chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(vnmlscan, "CHUNK_BYTES", chunk)
    expected = _verdict(lambda: count_groups(parse_xml(data, what="request")))
    assert _verdict(lambda: check_request(data)) == expected


@pytest.mark.parametrize("chunk", [16, 64 * 1024])
def test_the_node_limit_holds_on_both_paths(chunk: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vnmlscan, "CHUNK_BYTES", chunk)
    data = b"<vnml><project><group><valuation>" + b"<a/>" * 50 + b"</valuation></group></project></vnml>"
    assert check_request(data, XmlLimits(max_nodes=100)) == 1
    with pytest.raises(VnError, match="more than 40 nodes"):
        check_request(data, XmlLimits(max_nodes=40))
    utf16 = data.decode().encode("utf-16")
    with pytest.raises(VnError, match="more than 40 nodes"):
        check_request(utf16, XmlLimits(max_nodes=40))


def test_a_10_mib_request_is_checked_without_holding_its_tree() -> None:
    data = sized_request(10 * 1024 * 1024, 2000)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    assert check_request(data) == 1
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before
    assert grown < len(data) // 2, f"peak grew by {grown} bytes checking {len(data)}"
