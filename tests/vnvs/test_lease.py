"""The orchestrator lease against a real Redis: one holder, renewal, release, hand-over, orphans."""

import redis.asyncio as redis

from tests.conftest import wait_until
from vncommon import keys
from vnvs.lease import Lease, orphaned_requests


async def _orphans_are(client: redis.Redis, expected: list[str]) -> bool:
    return await orphaned_requests(client) == expected


async def test_only_one_instance_holds_a_request_at_a_time(redis_client: redis.Redis) -> None:
    first = Lease(redis_client, "r1", "vnvs-a", ttl_ms=5000)
    second = Lease(redis_client, "r1", "vnvs-b", ttl_ms=5000)
    assert await first.acquire()
    assert not await second.acquire()
    assert not await second.renew()
    await second.release()  # not the owner: nothing happens
    assert await redis_client.get(keys.lease_key("r1")) == b"vnvs-a"
    assert await first.acquire()  # re-entrant for its owner


async def test_a_lapsed_lease_makes_the_request_an_orphan_that_another_instance_can_take(
    redis_client: redis.Redis,
) -> None:
    dead = Lease(redis_client, "r2", "vnvs-dead", ttl_ms=300)
    assert await dead.acquire()
    assert await orphaned_requests(redis_client) == []
    await wait_until(lambda: _orphans_are(redis_client, ["r2"]), timeout=5)
    assert await Lease(redis_client, "r2", "vnvs-live", ttl_ms=5000).acquire()
    assert await orphaned_requests(redis_client) == []


async def test_a_handed_over_request_is_an_orphan_at_once(redis_client: redis.Redis) -> None:
    stopping = Lease(redis_client, "r3", "vnvs-stopping", ttl_ms=60_000)
    assert await stopping.acquire()
    await stopping.hand_over()
    assert await redis_client.exists(keys.lease_key("r3")) == 0
    assert await orphaned_requests(redis_client) == ["r3"]


async def test_a_request_held_by_an_instance_that_never_advertised_it_is_still_adopted_later(
    redis_client: redis.Redis,
) -> None:
    # The holder took the lease and died before adding the request to the active set.
    await redis_client.set(keys.lease_key("r4"), "vnvs-dead", px=300)
    other = Lease(redis_client, "r4", "vnvs-live", ttl_ms=5000)
    assert not await other.acquire()
    await other.ensure_advertised()
    assert await orphaned_requests(redis_client) == []
    await wait_until(lambda: _orphans_are(redis_client, ["r4"]), timeout=5)
