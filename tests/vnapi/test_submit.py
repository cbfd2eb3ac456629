"""Submit: what is stored, and how async and sync callers are answered."""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import redis.asyncio as redis

from tests.conftest import wait_until
from tests.vnapi.conftest import RunningVnapi
from tests.vnapi.support import RESPONSE_XML, VALID_XML, FakeOrchestrator, VnvsStandIn, submit_request
from vn.v1 import streams_pb2, valuation_pb2
from vnapi import intake
from vnapi.intake import Intake, Submission
from vnapi.servicer import INLINE_CHECK_BYTES
from vnapi.settings import VnapiSettings
from vnapi.submitwire import SubmitCall
from vncommon import keys
from vncommon.streams import from_fields


def _text(raw: dict[bytes, bytes]) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in raw.items()}


async def _wait_for_any_call(orchestrator: FakeOrchestrator) -> None:
    async def called() -> bool:
        return bool(orchestrator.calls)

    await wait_until(called)


async def test_async_submit_stores_every_key_and_answers_received(
    vnapi: RunningVnapi, redis_client: redis.Redis
) -> None:
    request = submit_request(idempotency_key="k-1", trace_id="trace-1", content_type="text/xml; charset=utf-8",
                             metadata={"X-Desk": "rates", "X-Trace-Id": "ignored"})
    answer = await vnapi.stub.Submit(request, timeout=5)
    rid = answer.request_id
    assert answer.status == valuation_pb2.REQUEST_STATUS_RECEIVED and not answer.deduplicated
    assert len(rid) == 32 and int(rid, 16) >= 0
    assert await redis_client.get(keys.request_xml_key(rid)) == VALID_XML
    metadata = _text(await redis_client.hgetall(keys.request_metadata_key(rid)))
    assert metadata == {"X-Desk": "rates", "X-Trace-Id": "ignored", "contentType": "text/xml; charset=utf-8",
                        "idempotencyKey": "k-1", "sha256": hashlib.sha256(VALID_XML).hexdigest(),
                        "traceId": "trace-1"}
    state = _text(await redis_client.hgetall(keys.request_state_key(rid)))
    assert state["status"] == "received"
    assert state["xmlKey"] == keys.request_xml_key(rid)
    assert state["responseKey"] == keys.request_response_key(rid)
    assert state["metadataKey"] == keys.request_metadata_key(rid)
    assert (state["groupCount"], state["currentGroup"], state["retryCount"]) == ("2", "0", "0")
    assert state["traceId"] == "trace-1" and state["receivedAt"] <= state["submittedAt"]
    assert await redis_client.get(keys.idempotency_key("k-1")) == (
        f"{rid}|{hashlib.sha256(VALID_XML).hexdigest()}".encode()
    )
    assert 0 < await redis_client.ttl(keys.idempotency_key("k-1")) <= 86_400


async def test_async_submit_adds_one_ingest_entry_naming_the_request_and_its_trace(
    vnapi: RunningVnapi, redis_client: redis.Redis
) -> None:
    answer = await vnapi.stub.Submit(submit_request(trace_id="t-2"), timeout=5)
    entries = await redis_client.xrange(keys.INGEST_STREAM)
    assert len(entries) == 1
    # Only what the ingest consumer reads: the keys follow from the id, counts and times are in the state.
    assert entries[0][1] == {b"requestId": answer.request_id.encode(), b"traceId": b"t-2"}
    entry = from_fields(streams_pb2.IngestEntry, entries[0][1])
    assert (entry.request_id, entry.trace_id) == (answer.request_id, "t-2")


async def test_a_large_body_is_taken_out_of_its_message_on_a_check_thread_not_the_event_loop(
    vnapi: RunningVnapi, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    large = VALID_XML.replace(b"<vnml>", b"<vnml><!--" + b"x" * INLINE_CHECK_BYTES + b"-->", 1)
    takers: list[str] = []
    take_body = SubmitCall.take_body

    def recorded(call: SubmitCall) -> bytes:
        takers.append(threading.current_thread().name)
        return take_body(call)

    monkeypatch.setattr(SubmitCall, "take_body", recorded)
    answer = await vnapi.stub.Submit(submit_request(large), timeout=10)
    small = await vnapi.stub.Submit(submit_request(), timeout=10)
    assert takers[0].startswith("vnapi-check") and takers[1] == threading.main_thread().name
    assert await redis_client.get(keys.request_xml_key(answer.request_id)) == large
    metadata = _text(await redis_client.hgetall(keys.request_metadata_key(answer.request_id)))
    assert metadata["sha256"] == hashlib.sha256(large).hexdigest()
    assert await redis_client.get(keys.request_xml_key(small.request_id)) == VALID_XML


async def test_status_is_queryable_as_soon_as_async_submit_returns(vnapi: RunningVnapi) -> None:
    answer = await vnapi.stub.Submit(submit_request(), timeout=5)
    status = await vnapi.stub.GetStatus(valuation_pb2.GetStatusRequest(request_id=answer.request_id), timeout=5)
    assert status.status == valuation_pb2.REQUEST_STATUS_RECEIVED
    assert status.group_count == 2 and status.received_at.seconds > 0


async def test_a_trace_id_is_generated_when_the_caller_sends_none(
    vnapi: RunningVnapi, redis_client: redis.Redis
) -> None:
    answer = await vnapi.stub.Submit(submit_request(), timeout=5)
    trace = await redis_client.hget(keys.request_state_key(answer.request_id), "traceId")
    assert trace and len(trace) == 32


@pytest.mark.parametrize(("field", "header", "expected"), [
    ("", "t-from-header", "t-from-header"),
    ("t-field", "t-from-header", "t-field"),
])
async def test_the_trace_id_follows_the_gateways_rule(
    vnapi: RunningVnapi, redis_client: redis.Redis, field: str, header: str, expected: str
) -> None:
    answer = await vnapi.stub.Submit(submit_request(trace_id=field, metadata={"x-trace-id": header}), timeout=5)
    assert await redis_client.hget(keys.request_state_key(answer.request_id), "traceId") == expected.encode()


async def test_sync_submit_returns_response_bytes_identical_to_get_results(
    vnapi: RunningVnapi, fake_vnvs: tuple[FakeOrchestrator, str], vnvs: VnvsStandIn, redis_client: redis.Redis
) -> None:
    orchestrator, _ = fake_vnvs
    call = asyncio.ensure_future(vnapi.stub.Submit(submit_request(sync=True), timeout=10))
    await _wait_for_any_call(orchestrator)
    rid = orchestrator.calls[0]
    await vnvs.start(rid)
    await vnvs.run_group(rid, 0)
    await vnvs.succeed(rid)
    answer = await call
    assert answer.request_id == rid and answer.status == valuation_pb2.REQUEST_STATUS_SUCCEEDED
    assert not answer.timed_out and answer.response_xml == RESPONSE_XML
    results = await vnapi.stub.GetResults(valuation_pb2.GetResultsRequest(request_id=rid), timeout=5)
    assert results.response_xml == answer.response_xml


async def test_sync_submit_answers_from_the_terminal_event_without_reading_the_state_hash(
    vnapi: RunningVnapi, fake_vnvs: tuple[FakeOrchestrator, str], vnvs: VnvsStandIn, redis_client: redis.Redis
) -> None:
    orchestrator, _ = fake_vnvs
    await redis_client.config_resetstat()
    call = asyncio.ensure_future(vnapi.stub.Submit(submit_request(sync=True), timeout=10))
    await _wait_for_any_call(orchestrator)
    await vnvs.succeed(orchestrator.calls[0])
    answer = await call
    assert answer.status == valuation_pb2.REQUEST_STATUS_SUCCEEDED and answer.response_xml == RESPONSE_XML
    # Stored after subscribing, the request cannot have ended unseen; its terminal event is final.
    stats = await redis_client.info("commandstats")
    assert "cmdstat_hgetall" not in stats, stats.get("cmdstat_hgetall")


async def test_sync_submit_of_a_failed_request_answers_failed_with_the_detail(
    vnapi: RunningVnapi, fake_vnvs: tuple[FakeOrchestrator, str], vnvs: VnvsStandIn
) -> None:
    orchestrator, _ = fake_vnvs
    call = asyncio.ensure_future(vnapi.stub.Submit(submit_request(sync=True), timeout=10))
    await _wait_for_any_call(orchestrator)
    raw = await vnvs.fail(orchestrator.calls[0], {"error": "hydration", "group": "0"})
    answer = await call
    assert answer.status == valuation_pb2.REQUEST_STATUS_FAILED
    assert json.loads(answer.failure_detail) == json.loads(raw) and not answer.response_xml


async def test_sync_submit_answers_timed_out_with_the_current_status_when_the_wait_runs_out(
    start_vnapi: Callable[[VnapiSettings], Awaitable[RunningVnapi]],
    make_settings: Callable[..., VnapiSettings],
    fake_vnvs: tuple[FakeOrchestrator, str],
    vnvs: VnvsStandIn,
) -> None:
    orchestrator, address = fake_vnvs
    running = await start_vnapi(make_settings(vnvs_address=address, sync_wait_timeout_ms=600))
    call = asyncio.ensure_future(running.stub.Submit(submit_request(sync=True), timeout=10))
    await _wait_for_any_call(orchestrator)
    await vnvs.start(orchestrator.calls[0])
    answer = await call
    assert answer.timed_out and answer.status == valuation_pb2.REQUEST_STATUS_STARTED
    assert answer.request_id == orchestrator.calls[0] and not answer.response_xml


async def test_sync_submit_answers_before_a_shorter_caller_deadline(vnapi: RunningVnapi) -> None:
    started = asyncio.get_running_loop().time()
    answer = await vnapi.stub.Submit(submit_request(sync=True), timeout=1.0)
    assert answer.timed_out and asyncio.get_running_loop().time() - started < 1.0


async def test_sync_submit_of_a_request_that_finished_before_the_wait_began_answers_at_once(
    vnapi: RunningVnapi, vnvs: VnvsStandIn
) -> None:
    first = await vnapi.stub.Submit(submit_request(idempotency_key="done"), timeout=5)
    await vnvs.succeed(first.request_id)
    answer = await vnapi.stub.Submit(submit_request(idempotency_key="done", sync=True), timeout=5)
    assert answer.deduplicated and answer.request_id == first.request_id
    assert answer.status == valuation_pb2.REQUEST_STATUS_SUCCEEDED and answer.response_xml == RESPONSE_XML


async def test_the_body_is_hashed_once_however_often_its_digest_is_used(
    redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    hashed: list[int] = []
    real_sha256 = hashlib.sha256

    def counting_sha256(data: bytes) -> Any:
        hashed.append(len(data))
        return real_sha256(data)

    monkeypatch.setattr(intake.hashlib, "sha256", counting_sha256)
    submission = Submission(xml=VALID_XML, group_count=2, idempotency_key="once")
    store = Intake(redis_client, 60)
    first = await store.submit(submission)
    again = await store.submit(submission)  # the claim compares digests with the stored one
    assert again.deduplicated and again.request_id == first.request_id
    assert hashed == [len(VALID_XML)]
    assert submission.sha256 == hashlib.sha256(VALID_XML).hexdigest()
