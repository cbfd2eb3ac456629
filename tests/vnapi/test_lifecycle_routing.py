"""Lifecycle routing with STREAM_SHARDS=6: each vnapi makes ids on its home shard and reads other shards
only for the requests it watches. Two real vnapi servers on one real Redis."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable

import grpc
import pytest
import redis.asyncio as redis

from tests.conftest import wait_until
from tests.vnapi.conftest import RunningVnapi
from tests.vnapi.support import FakeOrchestrator, VnvsStandIn, submit_request
from vn.v1 import valuation_pb2
from vnapi.lifecycle_home import LifecycleHome
from vnapi.settings import VnapiSettings
from vncommon import keys
from vncommon.requestid import is_request_id

SHARDS = 6
EVERY_EVENT = ["received", "started", "group_started", "group_completed", "group_started", "group_completed",
               "succeeded"]
Start = Callable[[VnapiSettings], Awaitable[RunningVnapi]]


@pytest.mark.parametrize(("shards", "home"), [(6, 4), (4, 1), (8, 7), (1, 0)])
def test_ids_of_a_home_are_uuid4_hex_on_its_lifecycle_shard_and_spread_over_the_dispatch_shards(
        shards: int, home: int) -> None:
    ids = [LifecycleHome(shards, home).new_request_id() for _ in range(100 * shards)]
    assert len(set(ids)) == len(ids)
    assert all(uuid.UUID(hex=rid).version == 4 and uuid.UUID(hex=rid).hex == rid and is_request_id(rid)
               for rid in ids)
    assert {keys.lifecycle_shard_of(rid, shards) for rid in ids} == {home}
    assert {keys.lifecycle_stream(rid, shards) for rid in ids} == {keys.lifecycle_shard_stream(home, shards)}
    # The ingest and dispatch shards come from another hash: every one of them still gets its share.
    spread = Counter(keys.shard_of(rid, shards) for rid in ids)
    assert set(spread) == set(range(shards)) and min(spread.values()) >= 50


@pytest.fixture
async def two_vnapis(start_vnapi: Start, make_settings: Callable[..., VnapiSettings],
                     fake_vnvs: tuple[FakeOrchestrator, str]) -> tuple[RunningVnapi, RunningVnapi]:
    common = {"stream_shards": SHARDS}
    first = await start_vnapi(make_settings(vnvs_address=fake_vnvs[1], consumer_name="vnapi-a", common=common))
    second = await start_vnapi(make_settings(vnvs_address=fake_vnvs[1], consumer_name="vnapi-b", common=common))
    return first, second


@pytest.fixture
def sharded_vnvs(redis_client: redis.Redis) -> VnvsStandIn:
    return VnvsStandIn(redis_client, SHARDS)


async def _watch(vnapi: RunningVnapi, request_id: str) -> list[valuation_pb2.LifecycleEvent]:
    call = vnapi.stub.Watch(valuation_pb2.WatchRequest(request_id=request_id), timeout=15)
    return [item.event async for item in call]


async def _run_to_success(vnvs: VnvsStandIn, request_id: str) -> None:
    await _until_received(vnvs, request_id)
    await vnvs.start(request_id)
    await vnvs.run_group(request_id, 0)
    await vnvs.run_group(request_id, 1)
    await vnvs.succeed(request_id)


def _check_every_event_once(events: list[valuation_pb2.LifecycleEvent], request_id: str) -> None:
    assert [event.status for event in events] == EVERY_EVENT
    assert [event.sequence for event in events] == list(range(1, len(EVERY_EVENT) + 1))
    assert all(event.request_id == request_id for event in events)


async def test_instances_take_different_homes_and_submit_on_them_only(
        two_vnapis: tuple[RunningVnapi, RunningVnapi]) -> None:
    first, second = two_vnapis
    assert first.app.home.shard != second.app.home.shard
    for vnapi in two_vnapis:
        answers = [await vnapi.stub.Submit(submit_request(), timeout=5) for _ in range(12)]
        assert {keys.lifecycle_shard_of(a.request_id, SHARDS) for a in answers} == {vnapi.app.home.shard}
        # Nothing watched elsewhere: each hub reads its home stream only.
        assert vnapi.app.hub.reading == {vnapi.app.home.stream}


async def test_watch_on_another_instance_sees_every_event_of_an_async_request(
        two_vnapis: tuple[RunningVnapi, RunningVnapi], sharded_vnvs: VnvsStandIn) -> None:
    submitter, watcher = two_vnapis
    rid = (await submitter.stub.Submit(submit_request(), timeout=5)).request_id
    watching = asyncio.ensure_future(_watch(watcher, rid))

    async def shard_read() -> bool:
        return submitter.app.home.stream in watcher.app.hub.reading

    await wait_until(shard_read)  # the watcher's hub reads the submitter's shard for this Watch
    await _run_to_success(sharded_vnvs, rid)
    _check_every_event_once(await watching, rid)


async def test_watch_on_another_instance_sees_every_event_of_a_sync_request(
        two_vnapis: tuple[RunningVnapi, RunningVnapi], sharded_vnvs: VnvsStandIn,
        fake_vnvs: tuple[FakeOrchestrator, str]) -> None:
    submitter, watcher = two_vnapis
    answering = asyncio.ensure_future(submitter.stub.Submit(submit_request(sync=True), timeout=15))

    async def handed_over() -> bool:
        return bool(fake_vnvs[0].calls)

    await wait_until(handed_over)
    rid = fake_vnvs[0].calls[0]
    watching = asyncio.ensure_future(_watch(watcher, rid))
    await _run_to_success(sharded_vnvs, rid)
    _check_every_event_once(await watching, rid)
    answer = await answering
    assert answer.request_id == rid and answer.status == valuation_pb2.REQUEST_STATUS_SUCCEEDED


async def test_watch_on_another_instance_when_the_request_ends_while_the_shard_reading_starts(
        two_vnapis: tuple[RunningVnapi, RunningVnapi], sharded_vnvs: VnvsStandIn,
        monkeypatch: pytest.MonkeyPatch) -> None:
    submitter, watcher = two_vnapis
    rid = (await submitter.stub.Submit(submit_request(), timeout=5)).request_id
    await _until_received(sharded_vnvs, rid)
    await sharded_vnvs.start(rid)
    # The watcher's hub takes the shard's start position only once the request has ended: every event
    # after the Watch's first look at the event list is published before the reading starts.
    tail_id = watcher.app.hub._tail_id
    starting, go_on = asyncio.Event(), asyncio.Event()

    async def tail_id_later(stream: str) -> str:
        starting.set()
        await go_on.wait()
        return await tail_id(stream)

    monkeypatch.setattr(watcher.app.hub, "_tail_id", tail_id_later)
    call = watcher.stub.Watch(valuation_pb2.WatchRequest(request_id=rid), timeout=15)
    events = [(await call.read()).event for _ in range(2)]  # replayed from the list: received, started
    await asyncio.wait_for(starting.wait(), 10)
    await sharded_vnvs.run_group(rid, 0)
    await sharded_vnvs.run_group(rid, 1)
    await sharded_vnvs.succeed(rid)
    go_on.set()
    while (item := await call.read()) is not grpc.aio.EOF:
        events.append(item.event)
    _check_every_event_once(events, rid)


async def _until_received(vnvs: VnvsStandIn, request_id: str) -> None:
    async def received() -> bool:
        return bool(await vnvs.client.llen(keys.request_events_key(request_id)))

    await wait_until(received)
