"""Submit refuses what SPEC sections 4, 7 and 10 forbid, with a stable reason and useful metadata."""

from __future__ import annotations

import grpc
import pytest
import redis.asyncio as redis

from tests.common.vnml_documents import ACCEPTED, REFUSED, Case
from tests.vnapi.conftest import RunningVnapi
from tests.vnapi.support import VALID_XML, submit_request
from vnapi.validation import check_submission
from vncommon import keys
from vncommon.errors import InvalidVnml, VnError
from vncommon.grpcutil import decode_error

LIMIT = 10 * 1024 * 1024


async def _refusal(vnapi: RunningVnapi, **fields: object) -> tuple[grpc.StatusCode, VnError]:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await vnapi.stub.Submit(submit_request(**fields), timeout=10)  # type: ignore[arg-type]
    return caught.value.code(), decode_error(caught.value)


def _padded_to(size: int) -> bytes:
    """VALID_XML followed by comments (each under libxml2's text limit) bringing it to exactly `size` bytes."""
    chunk = 1024 * 1024
    body = bytearray(VALID_XML)
    while len(body) < size:
        filler = min(chunk, size - len(body) - len(b"<!---->"))
        body += b"<!--" + b"x" * max(filler, 0) + b"-->"
    assert len(body) == size
    return bytes(body)


async def test_an_empty_body_is_refused_as_empty_body(vnapi: RunningVnapi, redis_client: redis.Redis) -> None:
    code, error = await _refusal(vnapi, xml=b"")
    assert (code, error.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "EMPTY_BODY")
    assert await redis_client.xlen(keys.INGEST_STREAM) == 0


async def test_malformed_xml_is_refused_with_its_line_and_column(vnapi: RunningVnapi) -> None:
    code, error = await _refusal(vnapi, xml=b"<vnml>\n  <project>\n    <group></project>\n</vnml>")
    assert (code, error.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "MALFORMED_XML")
    assert error.metadata["line"] == "3" and int(error.metadata["column"]) > 1


async def test_a_doctype_is_refused(vnapi: RunningVnapi) -> None:
    xml = b'<!DOCTYPE vnml [<!ENTITY x "boom">]>\n<vnml><project><group><valuation/></group></project></vnml>'
    _, error = await _refusal(vnapi, xml=xml)
    assert error.reason == "MALFORMED_XML" and "DOCTYPE" in error.message


async def test_a_request_without_a_group_is_invalid_vnml_naming_the_project_line(vnapi: RunningVnapi) -> None:
    code, error = await _refusal(vnapi, xml=b"<vnml>\n<project name='p'>\n<calculator/>\n</project>\n</vnml>")
    assert (code, error.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_VNML")
    assert error.metadata["line"] == "2"


async def test_a_group_without_a_valuation_is_invalid_vnml_naming_the_group_line(vnapi: RunningVnapi) -> None:
    xml = b"<vnml><project>\n<group name='a'><valuation/></group>\n<group name='b'><note/></group>\n</project></vnml>"
    _, error = await _refusal(vnapi, xml=xml)
    assert error.reason == "INVALID_VNML" and error.metadata["line"] == "3" and "'b'" in error.message


async def test_a_body_one_byte_over_the_limit_is_refused_as_payload_too_large(vnapi: RunningVnapi) -> None:
    code, error = await _refusal(vnapi, xml=_padded_to(LIMIT + 1))
    assert (code, error.reason) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "PAYLOAD_TOO_LARGE")
    assert error.metadata["limit"] == str(LIMIT)


async def test_a_body_of_exactly_the_limit_is_accepted(vnapi: RunningVnapi, redis_client: redis.Redis) -> None:
    body = _padded_to(LIMIT)
    assert len(body) == LIMIT
    answer = await vnapi.stub.Submit(submit_request(xml=body), timeout=10)
    assert await redis_client.strlen(keys.request_xml_key(answer.request_id)) == LIMIT


async def test_an_unsupported_content_type_is_refused(vnapi: RunningVnapi) -> None:
    _, error = await _refusal(vnapi, content_type="application/json")
    assert error.reason == "UNSUPPORTED_MEDIA_TYPE"


@pytest.mark.parametrize("content_type", ["", "application/xml", "TEXT/XML", "application/xml; charset=utf-8"])
def test_xml_content_types_with_parameters_are_accepted(content_type: str) -> None:
    assert check_submission(VALID_XML, content_type, "", LIMIT) == 2


async def test_an_idempotency_key_longer_than_255_characters_is_refused(vnapi: RunningVnapi) -> None:
    code, error = await _refusal(vnapi, idempotency_key="k" * 256)
    assert (code, error.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT")


def test_an_idempotency_key_of_255_characters_is_accepted() -> None:
    assert check_submission(VALID_XML, "", "k" * 255, LIMIT) == 2


def test_the_root_must_be_vnml() -> None:
    with pytest.raises(InvalidVnml, match="expected <vnml>"):
        check_submission(b"<request><project><group><valuation/></group></project></request>", "", "", LIMIT)


def test_two_projects_are_invalid() -> None:
    with pytest.raises(InvalidVnml, match="exactly one <project>"):
        check_submission(b"<vnml><project/><project/></vnml>", "", "", LIMIT)


def test_a_group_fanned_out_with_use_counts_as_written() -> None:
    xml = b"<vnml><project><group use='/vnml/project/x'><valuation name='v'/></group></project></vnml>"
    assert check_submission(xml, "", "", LIMIT) == 1


def test_comments_between_groups_are_not_elements() -> None:
    xml = b"<vnml><project><!-- c --><?pi x?><group><!-- c --><valuation/></group></project></vnml>"
    assert check_submission(xml, "", "", LIMIT) == 1


@pytest.mark.parametrize("case", REFUSED, ids=lambda case: case.name)
def test_a_namespaced_vnml_element_is_invalid_vnml_saying_so(case: Case) -> None:
    with pytest.raises(InvalidVnml) as caught:
        check_submission(case.xml, "", "", LIMIT)
    assert all(words in caught.value.message for words in case.refusal)
    assert caught.value.metadata["line"] == str(case.line)


@pytest.mark.parametrize("case", ACCEPTED, ids=lambda case: case.name)
def test_foreign_namespace_content_does_not_change_the_group_count(case: Case) -> None:
    assert check_submission(case.xml, "", "", LIMIT) == case.groups


async def test_a_request_in_a_default_namespace_is_refused_before_anything_is_stored(
    vnapi: RunningVnapi, redis_client: redis.Redis
) -> None:
    code, error = await _refusal(vnapi, xml=REFUSED[0].xml)
    assert (code, error.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_VNML")
    assert "no namespace" in error.message
    assert await redis_client.xlen(keys.INGEST_STREAM) == 0
