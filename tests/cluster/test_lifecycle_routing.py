"""The lifecycle hub with STREAM_SHARDS=6 reads a shard only while it has subscribers there (the home shard
always), on the session's Redis (one XREAD over the shards read) and on a Redis Cluster (a loop per shard)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
import redis.asyncio as redis
from prometheus_client import REGISTRY

from tests.conftest import wait_until
from vnapi.lifecycle_home import LifecycleHome
from vnapi.lifecycle_hub import RESYNC, LifecycleHub
from vncommon import keys, lifecycle

SHARDS = 6
HOME = 3
GRACE_S = 1.5
HubFactory = Callable[..., LifecycleHub]


@pytest.fixture(params=["session redis", "cluster"])
def client(request: pytest.FixtureRequest) -> redis.Redis:
    fixture = "redis_client" if request.param == "session redis" else "cluster_client"
    found: redis.Redis = request.getfixturevalue(fixture)
    return found


@pytest.fixture
async def start_hub(client: redis.Redis) -> AsyncIterator[HubFactory]:
    stop = asyncio.Event()
    readers: list[asyncio.Task[None]] = []

    def start(layouts: tuple[int, ...] = (SHARDS,)) -> LifecycleHub:
        hub = LifecycleHub(client, block_ms=100, layouts=layouts, home=LifecycleHome(SHARDS, HOME),
                           idle_grace_s=GRACE_S)
        readers.append(asyncio.create_task(hub.run(stop)))
        return hub

    yield start
    stop.set()
    await asyncio.wait_for(asyncio.gather(*readers), 10)


def _ids_on(shard: int, count: int) -> list[str]:
    return [LifecycleHome(SHARDS, shard).new_request_id() for _ in range(count)]


async def test_with_subscribers_on_the_home_shard_only_the_hub_reads_the_home_stream_only(
        client: redis.Redis, start_hub: HubFactory) -> None:
    hub = start_hub()
    await asyncio.wait_for(hub.ready.wait(), 10)
    home = keys.lifecycle_shard_stream(HOME, SHARDS)
    mine = _ids_on(HOME, 10)
    others = [rid for shard in range(SHARDS) if shard != HOME for rid in _ids_on(shard, 2)]
    subscriptions = [hub.subscribe(rid) for rid in mine]
    try:
        queues = [subscription.__enter__() for subscription in subscriptions]
        for rid in others + mine:  # the other shards are busy too
            await lifecycle.publish(client, lifecycle.new_event(rid, "started"), SHARDS)
        heard = [await queue.get(within=10) for queue in queues]
        assert [event.request_id for event in heard if event is not None] == mine
        assert hub.reading == {home}
        assert set(hub.stream_reads) == {home} and hub.reads == hub.stream_reads[home] > 0
    finally:
        for subscription in subscriptions:
            subscription.__exit__(None, None, None)


async def test_a_shard_is_read_while_watched_and_let_go_after_the_grace_period(
        client: redis.Redis, start_hub: HubFactory) -> None:
    hub = start_hub()
    await asyncio.wait_for(hub.ready.wait(), 10)
    rid, later = _ids_on(5, 2)
    stream = keys.lifecycle_shard_stream(5, SHARDS)
    with hub.subscribe(rid) as subscription:
        assert await subscription.get(within=10) is RESYNC  # its reading started: look at the state again
        assert stream in hub.reading
        assert REGISTRY.get_sample_value("vnapi_lifecycle_streams_read") == 2
        await lifecycle.publish(client, lifecycle.new_event(rid, "started"), SHARDS)
        event = await subscription.get(within=10)
        assert event is not None and event.status == "started"
    assert stream in hub.reading  # kept for the grace period
    with hub.subscribe(later) as subscription:  # within it: read on without a restart (no RESYNC)
        await lifecycle.publish(client, lifecycle.new_event(later, "started"), SHARDS)
        event = await subscription.get(within=10)
        assert event is not None and event.request_id == later
    left_at = asyncio.get_running_loop().time()

    async def let_go() -> bool:
        return stream not in hub.reading

    await wait_until(let_go, timeout=GRACE_S + 10)
    assert asyncio.get_running_loop().time() - left_at >= GRACE_S
    reads = hub.stream_reads[stream]
    await asyncio.sleep(0.5)
    assert hub.stream_reads[stream] == reads  # no read names it any more
    assert not [task for task in asyncio.all_tasks() if task.get_name() == f"lifecycle-read {stream}"]
    assert hub.reading == {keys.lifecycle_shard_stream(HOME, SHARDS)}
    assert REGISTRY.get_sample_value("vnapi_lifecycle_streams_read") == 1
    with hub.subscribe(rid) as subscription:  # needed again: read again, from the tail, with a RESYNC
        assert await subscription.get(within=10) is RESYNC
        await lifecycle.publish(client, lifecycle.new_event(rid, "succeeded"), SHARDS)
        event = await subscription.get(within=10)
        assert event is not None and event.status == "succeeded"


async def test_while_a_layout_drains_a_subscriber_hears_publishers_of_either_layout(
        client: redis.Redis, start_hub: HubFactory) -> None:
    hub = start_hub(layouts=(SHARDS, 1))
    await asyncio.wait_for(hub.ready.wait(), 10)
    rid = _ids_on(HOME, 1)[0]
    with hub.subscribe(rid) as subscription:
        assert await subscription.get(within=10) is RESYNC  # the old layout's stream joined
        assert hub.reading == {keys.lifecycle_shard_stream(HOME, SHARDS), keys.LIFECYCLE_STREAM}
        await lifecycle.publish(client, lifecycle.new_event(rid, "started"), 1)  # not yet rolled
        await lifecycle.publish(client, lifecycle.new_event(rid, "succeeded"), SHARDS)
        heard = [await subscription.get(within=10) for _ in range(2)]
        # Two streams: no order between them (Watch orders by sequence and fills gaps from the list).
        assert sorted((event.sequence, event.status) for event in heard if event is not None) == [
            (1, "started"), (2, "succeeded")]
