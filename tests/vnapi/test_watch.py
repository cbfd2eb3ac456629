"""Watch streams a request's lifecycle: past events replayed in order, live ones up to the terminal one."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from tests.conftest import wait_until
from tests.vnapi.conftest import RunningVnapi
from tests.vnapi.support import VnvsStandIn, submit_request
from vn.v1 import valuation_pb2
from vncommon import keys
from vncommon.grpcutil import decode_error


async def _collect(vnapi: RunningVnapi, request_id: str) -> list[valuation_pb2.WatchResponse]:
    call = vnapi.stub.Watch(valuation_pb2.WatchRequest(request_id=request_id), timeout=10)
    return [item async for item in call]


async def _received_published(vnvs: VnvsStandIn, request_id: str) -> None:
    async def published() -> bool:
        return await vnvs.client.llen(keys.request_events_key(request_id)) >= 1

    await wait_until(published)


async def test_watch_replays_past_events_then_streams_live_ones_up_to_one_terminal_event(
    vnapi: RunningVnapi, vnvs: VnvsStandIn
) -> None:
    rid = (await vnapi.stub.Submit(submit_request(), timeout=5)).request_id
    await _received_published(vnvs, rid)
    await vnvs.start(rid)
    watching = asyncio.ensure_future(_collect(vnapi, rid))
    await wait_until(lambda: _has_subscriber(vnapi, rid))
    await vnvs.run_group(rid, 0)
    await vnvs.run_group(rid, 1)
    await vnvs.succeed(rid)
    events = [item.event for item in await watching]
    assert [event.status for event in events] == [
        "received", "started", "group_started", "group_completed", "group_started", "group_completed", "succeeded"
    ]
    assert [event.sequence for event in events] == list(range(1, 8))
    assert [event.group_index for event in events] == [-1, -1, 0, 0, 1, 1, -1]
    assert all(event.request_id == rid and event.timestamp for event in events)


async def test_watch_of_a_finished_request_replays_its_history_and_ends(
    vnapi: RunningVnapi, vnvs: VnvsStandIn
) -> None:
    rid = (await vnapi.stub.Submit(submit_request(), timeout=5)).request_id
    await _received_published(vnvs, rid)
    detail = await vnvs.fail(rid, {"error": "boom"})
    events = [item.event for item in await _collect(vnapi, rid)]
    assert [(event.status, event.sequence) for event in events] == [("received", 1), ("failed", 2)]
    assert events[-1].detail == detail


async def test_watch_started_right_after_submit_sees_every_event_once(
    vnapi: RunningVnapi, vnvs: VnvsStandIn
) -> None:
    rid = (await vnapi.stub.Submit(submit_request(), timeout=5)).request_id
    watching = asyncio.ensure_future(_collect(vnapi, rid))
    await wait_until(lambda: _has_subscriber(vnapi, rid))
    await _received_published(vnvs, rid)
    await vnvs.start(rid)
    await vnvs.succeed(rid)
    events = [item.event for item in await watching]
    assert [(event.status, event.sequence) for event in events] == [("received", 1), ("started", 2),
                                                                     ("succeeded", 3)]


async def test_watch_fills_a_gap_left_by_racing_publishers_from_the_event_list(
    vnapi: RunningVnapi, vnvs: VnvsStandIn
) -> None:
    rid = (await vnapi.stub.Submit(submit_request(), timeout=5)).request_id
    await _received_published(vnvs, rid)
    watching = asyncio.ensure_future(_collect(vnapi, rid))
    await wait_until(lambda: _has_subscriber(vnapi, rid))
    # "started" recorded in the list but its stream entry not yet added when "succeeded" arrives.
    await vnvs.client.rpush(keys.request_events_key(rid),
                            '{"status": "started", "groupIndex": -1, "timestamp": "2025-01-01T00:00:00.000Z"}')
    await vnvs.succeed(rid)
    events = [item.event for item in await watching]
    assert [(event.status, event.sequence) for event in events] == [("received", 1), ("started", 2),
                                                                     ("succeeded", 3)]


async def test_watch_of_an_unknown_request_is_not_found(vnapi: RunningVnapi) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _collect(vnapi, "1" * 32)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert decode_error(caught.value).reason == "REQUEST_NOT_FOUND"


async def test_watch_of_a_purged_request_is_expired(vnapi: RunningVnapi, vnvs: VnvsStandIn) -> None:
    rid = (await vnapi.stub.Submit(submit_request(), timeout=5)).request_id
    await vnvs.succeed(rid)
    await vnvs.expire(rid)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _collect(vnapi, rid)
    assert decode_error(caught.value).reason == "REQUEST_EXPIRED"


async def _has_subscriber(vnapi: RunningVnapi, request_id: str) -> bool:
    return request_id in vnapi.app.hub._subscribers
