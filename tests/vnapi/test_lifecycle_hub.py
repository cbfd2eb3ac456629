"""The lifecycle hub: one XREAD loop per process, events handed only to their request's subscribers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from tests.conftest import RedisServer, wait_until
from tests.vnapi.conftest import RunningVnapi
from tests.vnapi.support import RESPONSE_XML, FakeOrchestrator, VnvsStandIn, submit_request
from vn.v1 import valuation_pb2
from vnapi.lifecycle_hub import RESYNC, LifecycleHub
from vncommon import lifecycle


@pytest.fixture
async def hub(redis_client: redis.Redis) -> AsyncIterator[LifecycleHub]:
    hub = LifecycleHub(redis_client, block_ms=100)
    stop = asyncio.Event()
    task = asyncio.create_task(hub.run(stop))
    await hub.ready.wait()
    yield hub
    stop.set()
    await asyncio.wait_for(task, 5)


async def _xread_connections(client: redis.Redis) -> int:
    """Connections blocked in XREAD right now (flag b); the ingest consumer's XREADGROUP is not one."""
    return sum(1 for entry in await client.client_list() if entry.get("cmd") == "xread" and "b" in entry["flags"])


async def test_the_hub_serves_100_sync_waiters_with_one_xread_loop(
    vnapi: RunningVnapi, fake_vnvs: tuple[FakeOrchestrator, str], vnvs: VnvsStandIn, redis_client: redis.Redis
) -> None:
    calls = [asyncio.ensure_future(vnapi.stub.Submit(submit_request(sync=True), timeout=30)) for _ in range(100)]

    async def all_waiting() -> bool:
        return vnapi.app.hub.subscriber_count == 100 and len(set(fake_vnvs[0].calls)) == 100

    await wait_until(all_waiting, timeout=20)
    reads_before = vnapi.app.hub.reads
    for _ in range(5):
        assert await _xread_connections(redis_client) <= 1
        await asyncio.sleep(0.05)
    await asyncio.gather(*(vnvs.succeed(rid) for rid in set(fake_vnvs[0].calls)))
    answers = await asyncio.gather(*calls)
    assert all(answer.status == valuation_pb2.REQUEST_STATUS_SUCCEEDED for answer in answers)
    assert all(answer.response_xml == RESPONSE_XML for answer in answers)
    # 100 terminal events arrive in a handful of batched reads, not one read per waiter.
    assert vnapi.app.hub.reads - reads_before < 50
    assert vnapi.app.hub.subscriber_count == 0


async def test_events_reach_only_the_subscribers_of_their_request(hub: LifecycleHub, redis_client: redis.Redis) -> None:
    with hub.subscribe("a") as first, hub.subscribe("a") as second, hub.subscribe("b") as other:
        await lifecycle.publish(redis_client, lifecycle.new_event("a", "started"))
        for subscription in (first, second):
            event = await subscription.get(5)
            assert event is not None and (event.status, event.sequence) == ("started", 1)
        assert other.queue.empty()
    assert hub.subscriber_count == 0


async def test_the_hub_starts_at_the_end_of_the_stream(redis_client: redis.Redis) -> None:
    await lifecycle.publish(redis_client, lifecycle.new_event("old", "succeeded"))
    hub = LifecycleHub(redis_client, block_ms=100)
    stop = asyncio.Event()
    with hub.subscribe("old") as subscription:
        task = asyncio.create_task(hub.run(stop))
        await hub.ready.wait()
        # Subscribed before the reading started: told to look again at what came before, not sent it.
        assert await subscription.get(5) is RESYNC
        await lifecycle.publish(redis_client, lifecycle.new_event("old", "failed"))
        event = await subscription.get(5)
        assert event is not None and event.status == "failed"
    stop.set()
    await asyncio.wait_for(task, 5)


async def test_the_hub_survives_a_redis_outage_and_tells_subscribers_to_resync(
    redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    # No command retries, so the hub itself sees the outage rather than the client hiding it.
    client = redis.Redis.from_url(redis_server.url, retry=Retry(NoBackoff(), 0))
    hub = LifecycleHub(client, block_ms=100)
    stop = asyncio.Event()
    task = asyncio.create_task(hub.run(stop))
    try:
        await hub.ready.wait()
        with hub.subscribe("r") as subscription:
            redis_server.stop()
            await asyncio.sleep(0.3)
            redis_server.start()
            assert await subscription.get(10) is RESYNC
            publisher = redis.Redis.from_url(redis_server.url)
            await lifecycle.publish(publisher, lifecycle.new_event("r", "started"))
            await publisher.aclose()
            event = await subscription.get(10)
            assert event is not None and event.status == "started"
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)
        await client.aclose()
