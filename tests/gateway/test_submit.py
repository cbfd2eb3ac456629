"""POST /valuation: every row of SPEC section 4 for submissions, against a scripted vnapi."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.gateway.conftest import GatewayFactory
from tests.gateway.scripted import ScriptedVnapi, delayed
from vn.v1 import valuation_pb2
from vncommon.errors import IdempotencyKeyReused, InvalidVnml, MalformedXml, PayloadTooLarge

VNML = b'<?xml version="1.0"?><vnml><project name="p"><group name="g"><valuation name="v"/></group></project></vnml>'
XML = {"Content-Type": "application/xml"}
LIMIT = 10 * 1024 * 1024
RESPONSE_XML = b'<vnml-response requestId="req-1" status="succeeded"><project name="p"/></vnml-response>'


def sized_document(size: int) -> bytes:
    head, tail = b"<vnml><!--", b"--></vnml>"
    return head + b"x" * (size - len(head) - len(tail)) + tail


def sync_answer(**fields: Any) -> valuation_pb2.SubmitResponse:
    return valuation_pb2.SubmitResponse(request_id="req-1", **fields)


async def test_async_submission_answers_202_accepted_with_the_request_id(
    gateway: TestClient[Any, Any], vnapi: ScriptedVnapi
) -> None:
    response = await gateway.post("/valuation", data=VNML, headers=XML)
    assert response.status == 202
    assert await response.json() == {"requestId": "req-1", "status": "accepted"}
    assert response.headers["Location"] == "/valuation/req-1/status"
    [call] = vnapi.service.calls("Submit")
    assert (call.request.xml, call.request.sync, call.request.content_type) == (VNML, False, "application/xml")


async def test_sync_submission_that_succeeds_answers_200_with_the_response_xml(
    gateway: TestClient[Any, Any], vnapi: ScriptedVnapi
) -> None:
    vnapi.service.submit_answer = sync_answer(status=valuation_pb2.REQUEST_STATUS_SUCCEEDED, response_xml=RESPONSE_XML)
    response = await gateway.post("/valuation?sync=Y", data=VNML, headers=XML)
    assert response.status == 200
    assert response.content_type == "application/xml"
    assert await response.read() == RESPONSE_XML
    assert vnapi.service.calls("Submit")[0].request.sync is True


async def test_sync_submission_that_fails_answers_500_with_the_detail_as_json(
    gateway: TestClient[Any, Any], vnapi: ScriptedVnapi
) -> None:
    detail = {"group": "price", "taskId": "2", "attempts": 3, "error": "exit 1"}
    vnapi.service.submit_answer = sync_answer(status=valuation_pb2.REQUEST_STATUS_FAILED,
                                              failure_detail=json.dumps(detail))
    response = await gateway.post("/valuation?sync=Y", data=VNML, headers=XML)
    assert response.status == 500
    assert await response.json() == {"message": "Processing failed", "requestId": "req-1", "detail": detail}


async def test_sync_failure_detail_that_is_not_json_is_passed_as_text(
    gateway: TestClient[Any, Any], vnapi: ScriptedVnapi
) -> None:
    vnapi.service.submit_answer = sync_answer(status=valuation_pb2.REQUEST_STATUS_FAILED, failure_detail="boom")
    response = await gateway.post("/valuation?sync=Y", data=VNML, headers=XML)
    assert (response.status, (await response.json())["detail"]) == (500, "boom")


async def test_sync_submission_that_outlasts_the_wait_answers_202_pending(
    gateway: TestClient[Any, Any], vnapi: ScriptedVnapi
) -> None:
    vnapi.service.submit_answer = sync_answer(status=valuation_pb2.REQUEST_STATUS_STARTED, timed_out=True)
    response = await gateway.post("/valuation?sync=y", data=VNML, headers=XML)
    assert response.status == 202
    assert await response.json() == {"requestId": "req-1", "status": "pending"}


async def test_sync_submit_deadline_outlives_the_sync_wait(
    make_gateway: GatewayFactory, vnapi: ScriptedVnapi
) -> None:
    gateway = await make_gateway(sync_wait_timeout_ms=30_000, call_timeout_ms=2_000)
    await gateway.post("/valuation?sync=Y", data=VNML, headers=XML)
    await gateway.post("/valuation", data=VNML, headers=XML)
    sync_call, async_call = vnapi.service.calls("Submit")
    assert sync_call.deadline_s is not None and sync_call.deadline_s > 30
    assert async_call.deadline_s is not None and async_call.deadline_s < 3


@pytest.mark.parametrize(("value", "sync"), [("Y", True), ("y", True), ("N", False), ("n", False)])
async def test_sync_parameter_is_case_insensitive(
    gateway: TestClient[Any, Any], vnapi: ScriptedVnapi, value: str, sync: bool
) -> None:
    response = await gateway.post(f"/valuation?sync={value}", data=VNML, headers=XML)
    assert response.status == 202
    assert vnapi.service.calls("Submit")[0].request.sync is sync


@pytest.mark.parametrize("value", ["yes", "true", "1", "", "YN"])
async def test_sync_parameter_other_than_y_or_n_is_400(
    gateway: TestClient[Any, Any], vnapi: ScriptedVnapi, value: str
) -> None:
    response = await gateway.post(f"/valuation?sync={value}", data=VNML, headers=XML)
    assert response.status == 400
    assert "sync" in (await response.json())["message"]
    assert vnapi.service.calls("Submit") == []


@pytest.mark.parametrize("body", [b"", b"  \n"])
async def test_empty_body_is_400_and_never_reaches_vnapi(
    gateway: TestClient[Any, Any], vnapi: ScriptedVnapi, body: bytes
) -> None:
    response = await gateway.post("/valuation", data=body, headers=XML)
    assert response.status == 400
    assert (await response.json())["reason"] == "EMPTY_BODY"
    assert vnapi.service.calls("Submit") == []


async def test_malformed_xml_is_400_with_the_parsers_line_and_column(
    gateway: TestClient[Any, Any], vnapi: ScriptedVnapi
) -> None:
    vnapi.service.submit_answer = MalformedXml("Opening and ending tag mismatch: a and b", 3, 14)
    response = await gateway.post("/valuation", data=b"<vnml>\n<a>\n  </b>", headers=XML)
    assert response.status == 400
    body = await response.json()
    assert (body["line"], body["column"], body["reason"]) == (3, 14, "MALFORMED_XML")
    assert "tag mismatch" in body["message"]


async def test_invalid_vnml_is_400_with_the_services_message(
    gateway: TestClient[Any, Any], vnapi: ScriptedVnapi
) -> None:
    vnapi.service.submit_answer = InvalidVnml("group 'g' has no valuation")
    response = await gateway.post("/valuation", data=b"<vnml/>", headers=XML)
    assert response.status == 400
    assert await response.json() == {"message": "group 'g' has no valuation", "reason": "INVALID_VNML"}


async def test_body_of_exactly_the_limit_is_accepted_and_forwarded_intact(
    gateway: TestClient[Any, Any], vnapi: ScriptedVnapi
) -> None:
    document = sized_document(LIMIT)
    response = await gateway.post("/valuation", data=io.BytesIO(document), headers=XML)
    assert response.status == 202
    forwarded = vnapi.service.calls("Submit")[0].request.xml
    assert len(forwarded) == LIMIT
    assert hashlib.sha256(forwarded).digest() == hashlib.sha256(document).digest()


async def test_body_one_byte_over_the_limit_is_413(gateway: TestClient[Any, Any], vnapi: ScriptedVnapi) -> None:
    response = await gateway.post("/valuation", data=io.BytesIO(sized_document(LIMIT + 1)), headers=XML)
    assert response.status == 413
    assert (await response.json())["reason"] == "PAYLOAD_TOO_LARGE"
    assert vnapi.service.calls("Submit") == []


async def _chunks(document: bytes, size: int = 256 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(document), size):
        yield document[start:start + size]


async def test_chunked_body_one_byte_over_the_limit_is_413(
    gateway: TestClient[Any, Any], vnapi: ScriptedVnapi
) -> None:
    response = await gateway.post("/valuation", data=_chunks(sized_document(LIMIT + 1)), headers=XML)
    assert response.status == 413
    assert vnapi.service.calls("Submit") == []


async def test_chunked_body_of_exactly_the_limit_is_forwarded_intact(
    gateway: TestClient[Any, Any], vnapi: ScriptedVnapi
) -> None:
    document = sized_document(LIMIT)
    response = await gateway.post("/valuation", data=_chunks(document), headers=XML)
    assert response.status == 202
    assert vnapi.service.calls("Submit")[0].request.xml == document


async def test_limit_follows_payload_max_bytes(make_gateway: GatewayFactory, vnapi: ScriptedVnapi) -> None:
    gateway = await make_gateway(payload_max_bytes=2048)
    assert (await gateway.post("/valuation", data=sized_document(2048), headers=XML)).status == 202
    assert (await gateway.post("/valuation", data=sized_document(2049), headers=XML)).status == 413


async def test_payload_too_large_from_vnapi_is_413(gateway: TestClient[Any, Any], vnapi: ScriptedVnapi) -> None:
    vnapi.service.submit_answer = PayloadTooLarge("too large")
    response = await gateway.post("/valuation", data=VNML, headers=XML)
    assert response.status == 413


@pytest.mark.parametrize("content_type", ["application/json", "text/plain", "application/octet-stream", None])
async def test_content_type_other_than_xml_is_415(
    gateway: TestClient[Any, Any], vnapi: ScriptedVnapi, content_type: str | None
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = await gateway.post("/valuation", data=VNML, headers=headers, skip_auto_headers=["Content-Type"])
    assert response.status == 415
    assert (await response.json())["reason"] == "UNSUPPORTED_MEDIA_TYPE"
    assert vnapi.service.calls("Submit") == []


@pytest.mark.parametrize("content_type", ["text/xml", "application/xml; charset=utf-8", "Text/XML; charset=UTF-8"])
async def test_xml_content_types_with_parameters_are_accepted(
    gateway: TestClient[Any, Any], vnapi: ScriptedVnapi, content_type: str
) -> None:
    response = await gateway.post("/valuation", data=VNML, headers={"Content-Type": content_type})
    assert response.status == 202
    assert vnapi.service.calls("Submit")[0].request.content_type == content_type.split(";")[0].lower()


async def test_idempotency_key_is_forwarded(gateway: TestClient[Any, Any], vnapi: ScriptedVnapi) -> None:
    await gateway.post("/valuation", data=VNML, headers={**XML, "Idempotency-Key": "k" * 255})
    assert vnapi.service.calls("Submit")[0].request.idempotency_key == "k" * 255


async def test_idempotency_key_reused_with_a_different_body_is_409(
    gateway: TestClient[Any, Any], vnapi: ScriptedVnapi
) -> None:
    vnapi.service.submit_answer = IdempotencyKeyReused("idempotency key 'k1' was used with a different body")
    response = await gateway.post("/valuation", data=VNML, headers={**XML, "Idempotency-Key": "k1"})
    assert response.status == 409
    assert (await response.json())["reason"] == "IDEMPOTENCY_KEY_REUSED"


async def test_idempotency_key_longer_than_255_characters_is_400(
    gateway: TestClient[Any, Any], vnapi: ScriptedVnapi
) -> None:
    response = await gateway.post("/valuation", data=VNML, headers={**XML, "Idempotency-Key": "k" * 256})
    assert response.status == 400
    assert "Idempotency-Key" in (await response.json())["message"]
    assert vnapi.service.calls("Submit") == []


async def test_every_x_header_is_forwarded_as_metadata_and_no_other(
    gateway: TestClient[Any, Any], vnapi: ScriptedVnapi
) -> None:
    headers = {**XML, "X-Client-Id": "desk-7", "x-book": "rates", "Accept-Language": "fr", "Idempotency-Key": "k"}
    await gateway.post("/valuation", data=VNML, headers=headers)
    metadata = dict(vnapi.service.calls("Submit")[0].request.metadata)
    assert metadata["X-Client-Id"] == "desk-7"
    assert metadata["x-book"] == "rates"
    assert not {"Accept-Language", "Idempotency-Key", "Content-Type"} & set(metadata)


async def test_trace_id_is_forwarded_to_vnapi_and_echoed_back(
    gateway: TestClient[Any, Any], vnapi: ScriptedVnapi
) -> None:
    response = await gateway.post("/valuation", data=VNML, headers={**XML, "X-Trace-Id": "trace-abc"})
    assert response.headers["X-Trace-Id"] == "trace-abc"
    [call] = vnapi.service.calls("Submit")
    assert call.request.trace_id == "trace-abc"
    assert call.request.metadata["X-Trace-Id"] == "trace-abc"
    assert "x-trace-id" not in call.metadata


@pytest.mark.parametrize("sent", ["two words", "t" * 129, "caf\u00e9"])
async def test_an_invalid_trace_id_is_refused_and_the_answer_carries_a_fresh_one(
    gateway: TestClient[Any, Any], vnapi: ScriptedVnapi, sent: str
) -> None:
    response = await gateway.post("/valuation", data=VNML, headers={**XML, "X-Trace-Id": sent})
    assert response.status == 400
    assert "X-Trace-Id must be 1-128 characters" in (await response.json())["message"]
    generated = response.headers["X-Trace-Id"]
    assert generated != sent and len(generated) == 32
    assert vnapi.service.calls("Submit") == []


async def test_missing_trace_id_is_generated_forwarded_and_echoed_back(
    gateway: TestClient[Any, Any], vnapi: ScriptedVnapi
) -> None:
    response = await gateway.post("/valuation", data=VNML, headers=XML)
    generated = response.headers["X-Trace-Id"]
    assert len(generated) == 32
    assert vnapi.service.calls("Submit")[0].request.trace_id == generated


async def test_unreachable_vnapi_is_503_json(gateway: TestClient[Any, Any], vnapi: ScriptedVnapi) -> None:
    await vnapi.stop()
    response = await gateway.post("/valuation", data=VNML, headers=XML)
    assert response.status == 503
    assert (await response.json())["reason"] == "UNAVAILABLE"


async def test_vnapi_missing_the_deadline_is_504_json(make_gateway: GatewayFactory, vnapi: ScriptedVnapi) -> None:
    gateway = await make_gateway(call_timeout_ms=200)
    vnapi.service.submit_answer = delayed(2.0, valuation_pb2.SubmitResponse(request_id="late"))
    response = await gateway.post("/valuation", data=VNML, headers=XML)
    assert response.status == 504
    assert (await response.json())["reason"] == "DEADLINE_EXCEEDED"


async def test_declared_content_length_over_the_limit_is_refused_before_the_body_is_sent(
    gateway: TestClient[Any, Any], vnapi: ScriptedVnapi
) -> None:
    reader, writer = await asyncio.open_connection(gateway.host, gateway.port)
    head = (f"POST /valuation HTTP/1.1\r\nHost: {gateway.host}\r\nContent-Type: application/xml\r\n"
            f"Content-Length: {LIMIT + 1}\r\n\r\n")
    writer.write(head.encode())
    await writer.drain()
    status_line = await asyncio.wait_for(reader.readline(), timeout=5)
    writer.close()
    await writer.wait_closed()
    assert status_line.startswith(b"HTTP/1.1 413")
    assert vnapi.service.calls("Submit") == []
