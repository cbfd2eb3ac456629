"""RunnerPool and the lease: an instance that loses a request's lease stops driving it, the new holder
finishes it once, and a stopping instance hands its requests over, even if a cancellation is lost."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
import redis.asyncio as redis

from tests.conftest import RedisServer, wait_until
from tests.vnvs.fake_worker import FakeWorker
from tests.vnvs.run_support import (
    ALL_TASKS,
    AMOUNTS,
    ONCE_EACH,
    TRACE_ID,
    amounts,
    assert_succeeded_once,
    book,
    events,
    lose_one_cancellation,
    make_settings,
    opened,
    price_book,
    record,
    shared_sandbox,
    status,
    store_request,
)
from vncommon import keys
from vnvs.lease import orphaned_requests
from vnvs.runner import RunnerPool

Pools = Callable[[str], RunnerPool]


@pytest.fixture
async def pools(redis_client: redis.Redis, redis_server: RedisServer) -> AsyncIterator[Pools]:
    """Runner pools of instances named by the test, stopped at the end."""
    made: list[RunnerPool] = []
    sandbox = await shared_sandbox()

    def make(instance_id: str) -> RunnerPool:
        made.append(RunnerPool(redis_client, make_settings(redis_server, instance_id=instance_id), sandbox))
        return made[-1]

    yield make
    for pool in made:
        await asyncio.wait_for(pool.hand_back(), 10)


async def _group_1_half_done(client: redis.Redis, request_id: str, worker: FakeWorker) -> bool:
    """Task 1 of group 1 has its result; task 2 is taken and held by the worker."""
    done = await client.exists(keys.task_result_key(request_id, 1, "1"))
    return bool(done) and (1, "2", 1) in worker.holding


async def _take_over_lease(client: redis.Redis, request_id: str, instance_id: str) -> None:
    """Another instance holds the lease now (this one stalled past it, the lease lapsed, it was taken)."""
    await client.set(keys.lease_key(request_id), instance_id, px=60_000)


async def test_an_instance_that_lost_the_lease_stops_and_the_new_holder_finishes_once(
    redis_client: redis.Redis, pools: Pools, monkeypatch: pytest.MonkeyPatch
) -> None:
    rid = await store_request(redis_client, book())
    calls = record(monkeypatch, "open_group")
    first, second = pools("vnvs-a"), pools("vnvs-b")
    worker = FakeWorker(redis_client, price_book)
    worker.hold(1, "2")
    async with worker.running():
        assert await first.try_start(rid, TRACE_ID)
        await wait_until(lambda: _group_1_half_done(redis_client, rid, worker))
        assert not await second.try_start(rid, TRACE_ID)  # held by a live instance
        await _take_over_lease(redis_client, rid, "vnvs-b")
        await wait_until(lambda: _stopped(first, rid))
        assert await redis_client.get(keys.lease_key(rid)) == b"vnvs-b"  # never dropped another's lease
        before = await events(redis_client, rid)
        assert before[-1] == ("group_started", 1) and await status(redis_client, rid) == "started"
        assert await second.try_start(rid, TRACE_ID)
        await wait_until(lambda: opened(calls, 1, times=2))  # the new holder found task 2 in flight
        worker.release(1, "2")
        await wait_until(lambda: _stopped(second, rid))
    assert amounts(await assert_succeeded_once(redis_client, rid)) == AMOUNTS
    assert worker.executions == ONCE_EACH
    assert await redis_client.xlen(keys.DISPATCH_STREAM) == ALL_TASKS


async def test_a_lost_cancellation_does_not_keep_a_run_going_after_its_lease_was_lost(
    redis_client: redis.Redis, pools: Pools, monkeypatch: pytest.MonkeyPatch
) -> None:
    rid = await store_request(redis_client, book())
    lost = lose_one_cancellation(monkeypatch)
    first = pools("vnvs-a")
    worker = FakeWorker(redis_client, price_book)
    worker.hold(1, "2")
    async with worker.running():
        assert await first.try_start(rid, TRACE_ID)
        await wait_until(lambda: _group_1_half_done(redis_client, rid, worker))
        await _take_over_lease(redis_client, rid, "vnvs-b")
        await wait_until(lambda: _stopped(first, rid))
    assert lost, "the emulated lost cancellation never happened"
    assert await status(redis_client, rid) == "started"


async def test_a_stopping_instance_hands_its_request_over_even_if_a_cancellation_is_lost(
    redis_client: redis.Redis, pools: Pools, monkeypatch: pytest.MonkeyPatch
) -> None:
    rid = await store_request(redis_client, book())
    lost = lose_one_cancellation(monkeypatch)
    first, second = pools("vnvs-a"), pools("vnvs-b")
    worker = FakeWorker(redis_client, price_book)
    worker.hold(1, "2")
    async with worker.running():
        assert await first.try_start(rid, TRACE_ID)
        await wait_until(lambda: _group_1_half_done(redis_client, rid, worker))
        await asyncio.wait_for(first.hand_back(), 5)
        assert lost and not first.is_running(rid)
        # Handed over: no lease, and an orphan at once, so another instance adopts it without waiting.
        assert await redis_client.exists(keys.lease_key(rid)) == 0
        assert rid in await orphaned_requests(redis_client)
        assert await second.try_start(rid, TRACE_ID)
        worker.release(1, "2")
        await wait_until(lambda: _stopped(second, rid))
    assert amounts(await assert_succeeded_once(redis_client, rid)) == AMOUNTS
    assert worker.executions == ONCE_EACH


async def _stopped(pool: RunnerPool, request_id: str) -> bool:
    return not pool.is_running(request_id)
