"""ValuationClient against a scripted vnapi: what it sends, and how each failure comes back."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.conftest import free_port
from tests.gateway.scripted import ScriptedVnapi, delayed, event
from vn.v1 import valuation_pb2
from vnclient import ClientSettings, ValuationClient
from vncommon.errors import (
    DeadlineExceeded,
    EmptyBody,
    IdempotencyKeyReused,
    InvalidArgument,
    InvalidVnml,
    MalformedXml,
    PayloadTooLarge,
    RequestExpired,
    RequestFailed,
    RequestNotFound,
    ResultNotReady,
    Unavailable,
    UnsupportedMediaType,
    VnError,
)

VNML = b"<vnml/>"

RAISED = [
    EmptyBody("request body is empty"),
    InvalidArgument("idempotency key too long"),
    InvalidVnml("no group"),
    UnsupportedMediaType("text/plain"),
    PayloadTooLarge("too large"),
    IdempotencyKeyReused("key reused"),
    RequestNotFound("no such request"),
    ResultNotReady("still running", {"status": "started"}),
    RequestFailed("failed", {"detail": json.dumps({"error": "boom"})}),
    RequestExpired("purged"),
    Unavailable("redis is down"),
    DeadlineExceeded("too slow"),
]


async def test_submit_sends_every_field_and_returns_the_response(
    client: ValuationClient, vnapi: ScriptedVnapi
) -> None:
    response = await client.submit(VNML, sync=True, idempotency_key="k-1", metadata={"X-Desk": "7"},
                                   content_type="text/xml", trace_id="trace-1")
    assert response.request_id == "req-1"
    [call] = vnapi.service.calls("Submit")
    sent = call.request
    assert (sent.xml, sent.sync, sent.idempotency_key, dict(sent.metadata), sent.content_type, sent.trace_id) == (
        VNML, True, "k-1", {"X-Desk": "7"}, "text/xml", "trace-1")
    assert "x-trace-id" not in call.metadata  # the field is the one carrier; nobody reads call metadata


async def test_every_call_carries_a_deadline(client: ValuationClient, vnapi: ScriptedVnapi) -> None:
    vnapi.service.status_answer = valuation_pb2.GetStatusResponse(request_id="r")
    await client.submit(VNML)
    await client.submit(VNML, sync=True)
    await client.status("r")
    plain, sync, status = (call.deadline_s for call in vnapi.service.received)
    assert plain is not None and plain <= 5.1
    assert sync is not None and sync > 120  # outlives the default SYNC_WAIT_TIMEOUT_MS
    assert status is not None and status <= 5.1


@pytest.mark.parametrize("error", RAISED, ids=lambda error: error.reason)
async def test_each_error_reason_comes_back_as_its_own_class(
    client: ValuationClient, vnapi: ScriptedVnapi, error: VnError
) -> None:
    vnapi.service.results_answer = error
    with pytest.raises(type(error)) as caught:
        await client.results("r")
    assert type(caught.value) is type(error)
    assert (caught.value.reason, caught.value.message, caught.value.metadata) == (
        error.reason, error.message, error.metadata)
    assert caught.value.code == error.code


async def test_malformed_xml_comes_back_with_its_line_and_column(
    client: ValuationClient, vnapi: ScriptedVnapi
) -> None:
    vnapi.service.submit_answer = MalformedXml("mismatched tag", 4, 9)
    with pytest.raises(MalformedXml) as caught:
        await client.submit(b"<a></b>")
    assert (caught.value.line, caught.value.column) == (4, 9)
    assert caught.value.metadata == {"line": "4", "column": "9"}


async def test_an_unreachable_server_is_unavailable() -> None:
    settings = ClientSettings(address=f"127.0.0.1:{free_port()}", call_timeout_s=2)
    async with ValuationClient(settings) as client:
        with pytest.raises(Unavailable):
            await client.status("r")


async def test_a_missed_deadline_is_deadline_exceeded(client: ValuationClient, vnapi: ScriptedVnapi) -> None:
    vnapi.service.status_answer = delayed(2.0, valuation_pb2.GetStatusResponse())
    with pytest.raises(DeadlineExceeded):
        await client.status("r", timeout=0.2)


async def test_status_and_results_return_the_servers_answers(
    client: ValuationClient, vnapi: ScriptedVnapi
) -> None:
    vnapi.service.status_answer = valuation_pb2.GetStatusResponse(request_id="r", group_count=3)
    vnapi.service.results_answer = valuation_pb2.GetResultsResponse(request_id="r", response_xml=b"<done/>")
    assert (await client.status("r")).group_count == 3
    assert await client.results("r") == b"<done/>"
    assert [call.request.request_id for call in vnapi.service.received] == ["r", "r"]


async def test_watch_yields_the_events_in_order(client: ValuationClient, vnapi: ScriptedVnapi) -> None:
    vnapi.service.watch_events = [event("r", "received", 1), event("r", "started", 2),
                                  event("r", "group_started", 3, 0), event("r", "succeeded", 4)]
    statuses = [item.status async for item in client.watch("r")]
    assert statuses == ["received", "started", "group_started", "succeeded"]


async def test_watch_raises_the_servers_error_as_its_class(client: ValuationClient, vnapi: ScriptedVnapi) -> None:
    vnapi.service.watch_events = [event("r", "received", 1)]
    vnapi.service.watch_error = RequestExpired("purged")
    seen = []
    with pytest.raises(RequestExpired):
        async for item in client.watch("r"):
            seen.append(item.status)
    assert seen == ["received"]


async def test_leaving_a_watch_early_ends_the_stream(client: ValuationClient, vnapi: ScriptedVnapi) -> None:
    vnapi.service.watch_events = [event("r", "received", 1), event("r", "started", 2)]
    vnapi.service.watch_hold = True  # the server would stream on until the request ends
    stream = client.watch("r")
    first = await anext(stream)
    await asyncio.wait_for(stream.aclose(), timeout=2)
    assert first.status == "received"
    await asyncio.wait_for(vnapi.service.watch_cancelled.wait(), timeout=5)  # the server stream was stopped
    with pytest.raises(StopAsyncIteration):
        await anext(stream)


async def test_check_health_reports_serving_and_not_serving(
    client: ValuationClient, vnapi: ScriptedVnapi
) -> None:
    assert await client.check_health() is True
    await vnapi.server.set_serving(False)
    assert await client.check_health() is False


def test_client_settings_come_from_the_environment() -> None:
    settings = ClientSettings.from_env({"VNAPI_ADDRESS": "vnapi:6000", "PAYLOAD_MAX_BYTES": "4096",
                                        "SYNC_WAIT_TIMEOUT_MS": "1000"})
    assert (settings.address, settings.payload_max_bytes) == ("vnapi:6000", 4096)
    assert settings.sync_timeout_s > 1.0
    assert settings.grpc_max_message_bytes > 4096
    assert ClientSettings.from_env({}, address="h:1").address == "h:1"


async def test_an_unexpected_server_failure_is_a_plain_internal_vn_error(
    client: ValuationClient, vnapi: ScriptedVnapi
) -> None:
    async def crash(request: object) -> object:
        raise RuntimeError("bug")

    vnapi.service.status_answer = crash
    with pytest.raises(VnError) as caught:
        await client.status("r")
    assert (type(caught.value), caught.value.reason) == (VnError, "INTERNAL")
