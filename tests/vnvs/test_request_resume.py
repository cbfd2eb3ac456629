"""A run that dies at any checkpoint is resumed by the next run: no finished task runs again, every event
is published once, and the request ends exactly once with the same response."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as redis

from tests.conftest import RedisServer, wait_until
from tests.vnvs.fake_worker import FakeWorker
from tests.vnvs.run_support import (
    ALL_TASKS,
    AMOUNTS,
    ONCE_EACH,
    Crash,
    amounts,
    assert_succeeded_once,
    book,
    crash_once,
    events,
    failing,
    make_settings,
    new_run,
    opened,
    price_book,
    record,
    run,
    status,
    store_request,
)
from vncommon import keys
from vnvs.ledger import RunLedger
from vnvs.settings import VnvsSettings


async def start(client: redis.Redis, settings: VnvsSettings, request_id: str) -> asyncio.Task[None]:
    return asyncio.create_task((await new_run(client, settings, request_id)).run())


async def kill(running: asyncio.Task[None]) -> None:
    """The orchestrator dies where the run waits: nothing after that point is written. Cancelled again
    until it stops: on Python 3.11 redis-py's sends can swallow a cancellation (see vnvs.runner)."""
    while not running.done():
        running.cancel()
        await asyncio.wait({running}, timeout=0.2)
    assert running.cancelled()


async def test_a_run_that_died_right_after_starting_is_resumed_without_a_second_started_event(
    redis_client: redis.Redis, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    rid = await store_request(redis_client, book())
    settings = make_settings(redis_server)
    crash_once(monkeypatch, "group_progress", lambda group_index: group_index == 0)
    async with FakeWorker(redis_client, price_book).running() as worker:
        with pytest.raises(Crash):
            await run(redis_client, settings, rid)
        assert await status(redis_client, rid) == "started"
        assert await events(redis_client, rid) == [("received", -1), ("started", -1)]
        await run(redis_client, settings, rid)
    assert amounts(await assert_succeeded_once(redis_client, rid)) == AMOUNTS
    assert worker.executions == ONCE_EACH


async def test_a_run_that_died_after_a_group_completed_does_not_run_that_group_again(
    redis_client: redis.Redis, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    rid = await store_request(redis_client, book())
    settings = make_settings(redis_server)
    crash_once(monkeypatch, "group_progress", lambda group_index: group_index == 1)
    async with FakeWorker(redis_client, price_book).running() as worker:
        with pytest.raises(Crash):
            await run(redis_client, settings, rid)
        assert (await events(redis_client, rid))[-1] == ("group_completed", 0)
        assert worker.executions == {(0, "1"): 1, (0, "2"): 1}
        await run(redis_client, settings, rid)
    assert amounts(await assert_succeeded_once(redis_client, rid)) == AMOUNTS
    assert worker.executions == ONCE_EACH
    assert await redis_client.xlen(keys.DISPATCH_STREAM) == ALL_TASKS


async def test_a_run_that_died_mid_group_leaves_done_and_dispatched_tasks_alone(
    redis_client: redis.Redis, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    rid = await store_request(redis_client, book())
    settings = make_settings(redis_server)
    calls = record(monkeypatch, "open_group")
    progress = record(monkeypatch, "group_progress")
    worker = FakeWorker(redis_client, price_book)
    worker.hold(1, "2")
    async with worker.running():
        first = await start(redis_client, settings, rid)

        async def one_done_one_taken() -> bool:
            done = await redis_client.exists(keys.task_result_key(rid, 1, "1"))
            return bool(done) and (1, "2", 1) in worker.holding
        await wait_until(one_done_one_taken)
        await kill(first)
        second = await start(redis_client, settings, rid)
        await wait_until(lambda: opened(calls, 1, times=2))
        worker.release(1, "2")
        await asyncio.wait_for(second, 20)
    # The resumed run found task 1 done and task 2 in flight, so it sent neither again.
    resumed = [result for args, result in calls if args[0] == 1][-1]
    assert resumed == ({"1"}, {"1": 1, "2": 1})
    # ... and knew group_started was out already, so it did not publish it again.
    assert [result for args, result in progress if args[0] == 1][-1] == (False, 2, True)
    assert amounts(await assert_succeeded_once(redis_client, rid)) == AMOUNTS
    assert worker.executions == ONCE_EACH
    assert await redis_client.xlen(keys.DISPATCH_STREAM) == ALL_TASKS


async def test_a_run_that_died_while_a_retry_was_due_retries_the_task_on_resume(
    redis_client: redis.Redis, redis_server: RedisServer
) -> None:
    rid = await store_request(redis_client, book())
    price = failing(price_book, lambda d: (d.group_index, d.task_id, d.attempt) == (1, "2", 1))
    async with FakeWorker(redis_client, price).running() as worker:
        # The first run waits a minute before the retry: it dies with the failure seen but not acted on.
        first = await start(redis_client, make_settings(redis_server, retry_base_ms=60_000, retry_cap_ms=60_000), rid)
        # Both updates of group 0, then group 1's success of task 1 and failure of task 2.
        await wait_until(lambda: _updates(redis_client, rid, 4))
        await kill(first)
        await run(redis_client, make_settings(redis_server), rid)
    assert amounts(await assert_succeeded_once(redis_client, rid)) == AMOUNTS
    assert worker.executions == {**ONCE_EACH, (1, "2"): 2}


async def test_a_run_that_died_with_a_retry_in_flight_waits_for_that_attempt(
    redis_client: redis.Redis, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    rid = await store_request(redis_client, book())
    settings = make_settings(redis_server)
    price = failing(price_book, lambda d: (d.group_index, d.task_id, d.attempt) == (1, "2", 1))
    calls = record(monkeypatch, "open_group")
    worker = FakeWorker(redis_client, price)
    worker.hold(1, "2", attempt=2)
    async with worker.running():
        first = await start(redis_client, settings, rid)
        await wait_until(lambda: _holding(worker, (1, "2", 2)))
        await kill(first)
        second = await start(redis_client, settings, rid)
        await wait_until(lambda: opened(calls, 1, times=2))
        worker.release(1, "2", attempt=2)
        await asyncio.wait_for(second, 20)
    # Attempt 1's failure, read again by the resumed run, is stale: it neither retries nor fails again.
    assert amounts(await assert_succeeded_once(redis_client, rid)) == AMOUNTS
    assert worker.executions == {**ONCE_EACH, (1, "2"): 2}
    assert await redis_client.xlen(keys.DISPATCH_STREAM) == ALL_TASKS + 1


async def _updates(client: redis.Redis, request_id: str, count: int) -> bool:
    return bool(await client.xlen(keys.updates_stream(request_id)) >= count)


async def _holding(worker: FakeWorker, attempt: tuple[int, str, int]) -> bool:
    return attempt in worker.holding


async def test_a_run_that_died_after_storing_the_response_finishes_once_with_the_same_response(
    redis_client: redis.Redis, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    rid = await store_request(redis_client, book())
    settings = make_settings(redis_server)

    async def store_response_only(ledger: RunLedger, status_word: str, payload: bytes, *_: object) -> None:
        await redis_client.set(keys.request_response_key(ledger.request_id), payload)

    crash_once(monkeypatch, "finish", before_dying=store_response_only)
    async with FakeWorker(redis_client, price_book).running() as worker:
        with pytest.raises(Crash):
            await run(redis_client, settings, rid)
        stored = await redis_client.get(keys.request_response_key(rid))
        assert stored is not None and await status(redis_client, rid) == "started"
        await run(redis_client, settings, rid)
    assert await assert_succeeded_once(redis_client, rid) == stored
    assert worker.executions == ONCE_EACH


async def test_a_late_run_of_a_request_that_already_succeeded_changes_nothing(
    redis_client: redis.Redis, redis_server: RedisServer
) -> None:
    # E.g. a second instance took the lease the moment the first one finished (and freed it).
    rid = await store_request(redis_client, book())
    settings = make_settings(redis_server)
    async with FakeWorker(redis_client, price_book).running() as worker:
        await run(redis_client, settings, rid)
        response = await assert_succeeded_once(redis_client, rid)
        await run(redis_client, make_settings(redis_server, instance_id="vnvs-b"), rid)
    assert await assert_succeeded_once(redis_client, rid) == response
    assert worker.executions == ONCE_EACH


async def test_a_late_run_of_a_request_that_already_failed_changes_nothing(
    redis_client: redis.Redis, redis_server: RedisServer
) -> None:
    rid = await store_request(redis_client, book())
    always = failing(price_book, lambda d: (d.group_index, d.task_id) == (0, "1"))
    async with FakeWorker(redis_client, always).running():
        await run(redis_client, make_settings(redis_server, max_task_retries=1), rid)
    before = await events(redis_client, rid)
    assert before[-1] == ("failed", -1)
    async with FakeWorker(redis_client, price_book).running() as worker:
        await run(redis_client, make_settings(redis_server, instance_id="vnvs-b"), rid)
    assert await status(redis_client, rid) == "failed"
    assert await events(redis_client, rid) == before
    assert not worker.executions
