"""Submit's body is read out of the serialised request once: the same fields protobuf would parse."""

from __future__ import annotations

import pytest
from google.protobuf.message import DecodeError

from vn.v1 import valuation_pb2
from vnapi.submitwire import SubmitCall, read_submit

Request = valuation_pb2.SubmitRequest
CASES = [
    Request(),
    Request(xml=b"<vnml/>"),
    Request(xml=b"x" * 300_000, sync=True, idempotency_key="k-1", content_type="text/xml", trace_id="a" * 32,
            metadata={"X-Team": "rates", "X-Desk": "é"}),
    Request(sync=True, metadata={"X-A": "1"}),
]


@pytest.mark.parametrize("message", CASES, ids=range(len(CASES)))
def test_the_split_request_equals_what_protobuf_parses(message: valuation_pb2.SubmitRequest) -> None:
    data = message.SerializeToString()
    call = read_submit(data)
    parsed = Request.FromString(data)
    assert call.size == len(parsed.xml)
    assert call.take_body() == parsed.xml
    parsed.ClearField("xml")
    assert call.request == parsed and not call.request.xml


def test_a_repeated_body_field_keeps_the_last_as_protobuf_does() -> None:
    data = Request(xml=b"first", sync=True).SerializeToString() + Request(xml=b"second").SerializeToString()
    assert read_submit(data).take_body() == Request.FromString(data).xml == b"second"
    assert read_submit(data).request.sync


@pytest.mark.parametrize("data", [b"\x0a\x05ab", b"\x0a\xff\xff", b"\x0b", b"\x80"])
def test_a_malformed_request_is_refused(data: bytes) -> None:
    with pytest.raises(DecodeError):
        read_submit(data)


def test_the_body_is_taken_once_and_the_message_let_go() -> None:
    data = Request(xml=b"<vnml/>", sync=True).SerializeToString()
    call = read_submit(data)
    assert call.take_body() == b"<vnml/>"
    with pytest.raises(RuntimeError, match="taken already"):
        call.take_body()


def test_a_body_of_its_own_is_not_copied() -> None:
    body = b"<vnml/>" * 100
    assert SubmitCall.of(Request(), body).take_body() is body
