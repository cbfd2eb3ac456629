"""Idempotency keys: one request per key and body, however many times and however concurrently it comes."""

from __future__ import annotations

import asyncio

import grpc
import pytest
import redis.asyncio as redis

from tests.conftest import wait_until
from tests.vnapi.conftest import RunningVnapi
from tests.vnapi.support import RESPONSE_XML, VALID_XML, FakeOrchestrator, VnvsStandIn, submit_request
from vn.v1 import valuation_pb2
from vncommon import keys
from vncommon.grpcutil import decode_error


async def test_the_same_key_sent_20_times_concurrently_gives_one_request_and_one_ingest_entry(
    vnapi: RunningVnapi, redis_client: redis.Redis, fake_vnvs: tuple[FakeOrchestrator, str]
) -> None:
    request = submit_request(idempotency_key="burst")
    answers = await asyncio.gather(*(vnapi.stub.Submit(request, timeout=10) for _ in range(20)))
    assert len({answer.request_id for answer in answers}) == 1
    assert sum(not answer.deduplicated for answer in answers) == 1
    stream = keys.ingest_stream(answers[0].request_id, vnapi.app.settings.common.stream_shards)
    assert await redis_client.xlen(stream) == 1
    assert len(await redis_client.keys("state:request:*")) == 1

    async def every_entry_handled() -> bool:
        # Delivered and acknowledged: the ingest consumer is done with the stream, so no call is still to come.
        groups = await redis_client.xinfo_groups(stream)
        summary = await redis_client.xpending(stream, keys.INGEST_GROUP) if groups else None
        return bool(groups) and int(groups[0]["entries-read"] or 0) >= 1 and int(summary["pending"]) == 0

    await wait_until(every_entry_handled)
    assert fake_vnvs[0].calls == [answers[0].request_id]


async def test_the_same_key_with_the_same_body_later_returns_the_existing_request(vnapi: RunningVnapi) -> None:
    first = await vnapi.stub.Submit(submit_request(idempotency_key="again"), timeout=5)
    second = await vnapi.stub.Submit(submit_request(idempotency_key="again"), timeout=5)
    assert second.request_id == first.request_id and second.deduplicated
    assert second.status == valuation_pb2.REQUEST_STATUS_RECEIVED


async def test_the_same_key_with_a_different_body_is_refused_as_reused(vnapi: RunningVnapi) -> None:
    first = await vnapi.stub.Submit(submit_request(idempotency_key="reused"), timeout=5)
    other = VALID_XML.replace(b'name="eod"', b'name="intraday"')
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await vnapi.stub.Submit(submit_request(xml=other, idempotency_key="reused"), timeout=5)
    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS
    error = decode_error(caught.value)
    assert error.reason == "IDEMPOTENCY_KEY_REUSED" and error.metadata["requestId"] == first.request_id


async def test_submissions_without_a_key_are_never_deduplicated(vnapi: RunningVnapi) -> None:
    first = await vnapi.stub.Submit(submit_request(), timeout=5)
    second = await vnapi.stub.Submit(submit_request(), timeout=5)
    assert first.request_id != second.request_id and not second.deduplicated


async def test_concurrent_sync_duplicates_all_wait_for_the_one_execution(
    vnapi: RunningVnapi, fake_vnvs: tuple[FakeOrchestrator, str], vnvs: VnvsStandIn
) -> None:
    request = submit_request(idempotency_key="sync-burst", sync=True)
    calls = [asyncio.ensure_future(vnapi.stub.Submit(request, timeout=10)) for _ in range(5)]

    async def handed_over() -> bool:
        return bool(fake_vnvs[0].calls)

    await wait_until(handed_over)
    await vnvs.succeed(fake_vnvs[0].calls[0])
    answers = await asyncio.gather(*calls)
    assert {answer.request_id for answer in answers} == {fake_vnvs[0].calls[0]}
    assert all(answer.response_xml == RESPONSE_XML for answer in answers)
