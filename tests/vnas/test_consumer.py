"""The worker loop against a real Redis: fetch, execute, settle, reclaim, keep fresh, concurrency, stop."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as redis

from tests.conftest import wait_until
from tests.vnas.conftest import (
    TASK_XML,
    Worker,
    WorkerFactory,
    dispatch,
    pending_count,
    price_of,
    process_alive,
    read_updates,
    write_script,
)
from vn.v1 import streams_pb2
from vnas import settler
from vnas.executors import PythonExecutor
from vnas.stream import DispatchStream
from vncommon import keys
from vncommon.streams import text, to_fields

RESULT_KEY = keys.task_result_key("req-1", 0, "1")


async def _idle_at_least(client: redis.Redis, idle_ms: int) -> bool:
    """True once every pending dispatch entry has been idle for `idle_ms`, so a reclaim may take it."""
    pending = await client.xpending_range(keys.DISPATCH_STREAM, keys.DISPATCH_GROUP, "-", "+", 100)
    return bool(pending) and all(item["time_since_delivered"] >= idle_ms for item in pending)


async def test_a_dispatched_entry_is_executed_stored_reported_and_acknowledged(
    redis_client: redis.Redis, make_worker: WorkerFactory
) -> None:
    entry_id = await dispatch(redis_client, attempt=2)
    worker = make_worker()
    await worker.consumer.run(drain=True)
    assert price_of(await redis_client.get(RESULT_KEY)) == "101.25"
    assert 0 < await redis_client.ttl(RESULT_KEY) <= worker.settings.common.request_ttl_seconds
    [update] = await read_updates(redis_client)
    assert (update.request_id, update.group_index, update.task_id) == ("req-1", 0, "1")
    assert (update.status, update.result_key, update.attempt, update.error) == ("completed", RESULT_KEY, 2, "")
    assert update.duration_ms >= 0
    assert await pending_count(redis_client) == 0
    assert worker.consumer.outcomes["completed"] == 1
    assert entry_id


async def test_a_task_document_carried_in_the_entry_runs_without_any_key(
    redis_client: redis.Redis, make_worker: WorkerFactory
) -> None:
    await dispatch(redis_client, inline=True)
    assert await redis_client.exists(keys.task_xml_key("req-1", 0, "1")) == 0
    await make_worker().consumer.run(drain=True)
    assert price_of(await redis_client.get(RESULT_KEY)) == "101.25"
    [update] = await read_updates(redis_client)
    assert update.status == "completed"
    assert await pending_count(redis_client) == 0


async def test_a_batch_of_several_requests_settles_each_on_its_own_stream_and_acknowledges_all(
    redis_client: redis.Redis, make_worker: WorkerFactory
) -> None:
    for request_id in ("req-1", "req-2", "req-3"):
        for task_id in ("1", "2"):
            await dispatch(redis_client, request_id=request_id, task_id=task_id, inline=task_id == "2")
    worker = make_worker(concurrency=6)
    await worker.consumer.run(drain=True)
    for request_id in ("req-1", "req-2", "req-3"):
        updates = await read_updates(redis_client, request_id)
        assert sorted((u.request_id, u.task_id, u.status) for u in updates) == [
            (request_id, "1", "completed"), (request_id, "2", "completed")]
        for task_id in ("1", "2"):
            result_key = keys.task_result_key(request_id, 0, task_id)
            assert price_of(await redis_client.get(result_key)) == "101.25"
        assert await redis_client.ttl(keys.updates_stream(request_id)) > 0
    assert await pending_count(redis_client) == 0
    assert worker.consumer.outcomes["completed"] == 6


async def test_a_failed_script_is_reported_failed_and_stores_no_result(
    redis_client: redis.Redis, make_worker: WorkerFactory, tmp_path: Path
) -> None:
    await dispatch(redis_client)
    worker = make_worker(script=write_script(tmp_path, "echo 'no market' >&2; exit 4"))
    await worker.consumer.run(drain=True)
    [update] = await read_updates(redis_client)
    assert update.status == "failed"
    assert update.result_key == ""
    assert "exit code 4" in update.error and "no market" in update.error
    assert await redis_client.exists(RESULT_KEY) == 0
    assert await pending_count(redis_client) == 0


async def test_an_existing_result_is_never_overwritten_by_a_later_attempt(
    redis_client: redis.Redis, make_worker: WorkerFactory
) -> None:
    await redis_client.set(RESULT_KEY, b"<valuation>earlier success</valuation>")
    await dispatch(redis_client, attempt=3)
    await make_worker().consumer.run(drain=True)
    assert await redis_client.get(RESULT_KEY) == b"<valuation>earlier success</valuation>"
    [update] = await read_updates(redis_client)
    assert (update.status, update.attempt) == ("completed", 3)


async def test_the_entry_is_acknowledged_only_after_the_update_is_written(
    redis_client: redis.Redis, make_worker: WorkerFactory
) -> None:
    # The updates stream name holds a string, so XADD fails: the entry must stay pending and be retried.
    blocked = "stream:task:updates:{req-1}"
    await redis_client.set(blocked, "not a stream")
    await dispatch(redis_client, updates=blocked)
    worker = make_worker()
    worker.start()

    async def settle_was_tried() -> bool:
        return await redis_client.exists(RESULT_KEY) == 1

    await wait_until(settle_was_tried)
    await asyncio.sleep(0.3)
    assert await pending_count(redis_client) == 1
    await redis_client.delete(blocked)

    async def acknowledged() -> bool:
        return await pending_count(redis_client) == 0

    await wait_until(acknowledged)
    [update] = await read_updates(redis_client)
    assert update.status == "completed"


async def test_a_missing_payload_is_acknowledged_and_reported_failed(
    redis_client: redis.Redis, make_worker: WorkerFactory
) -> None:
    await dispatch(redis_client, xml=None)
    worker = make_worker()
    await worker.consumer.run(drain=True)
    [update] = await read_updates(redis_client)
    assert update.status == "failed"
    assert "payload missing" in update.error
    assert await pending_count(redis_client) == 0


async def test_a_payload_of_the_wrong_type_fails_the_task_instead_of_poisoning_the_stream(
    redis_client: redis.Redis, make_worker: WorkerFactory
) -> None:
    await dispatch(redis_client, xml=None)
    await redis_client.hset(keys.task_xml_key("req-1", 0, "1"), "not", "a string")
    await make_worker().consumer.run(drain=True)
    [update] = await read_updates(redis_client)
    assert update.status == "failed" and "WRONGTYPE" in update.error
    assert await pending_count(redis_client) == 0


async def test_a_malformed_entry_is_acknowledged_and_reported(
    redis_client: redis.Redis, make_worker: WorkerFactory
) -> None:
    await redis_client.xgroup_create(keys.DISPATCH_STREAM, keys.DISPATCH_GROUP, id="0", mkstream=True)
    await redis_client.xadd(keys.DISPATCH_STREAM, {"requestId": "req-1", "groupIndex": "zero"})
    worker = make_worker()
    await worker.consumer.run(drain=True)
    [update] = await read_updates(redis_client)
    assert update.status == "failed" and "malformed" in update.error
    assert await pending_count(redis_client) == 0
    assert worker.consumer.outcomes["rejected"] == 1


async def test_an_entry_left_idle_by_a_dead_consumer_is_reclaimed_and_run(
    redis_client: redis.Redis, make_worker: WorkerFactory
) -> None:
    await dispatch(redis_client)
    await redis_client.xgroup_create(keys.DISPATCH_STREAM, keys.DISPATCH_GROUP, id="0", mkstream=True)
    taken = await redis_client.xreadgroup(keys.DISPATCH_GROUP, "dead-worker", {keys.DISPATCH_STREAM: ">"}, count=1)
    assert taken and len(taken[0][1]) == 1
    # Wide enough that a loaded machine does not let the first drain come after the window.
    claim_idle_ms = 600
    worker = make_worker(claim_idle_ms=claim_idle_ms)
    # Not idle long enough yet: a drain must leave it alone.
    await worker.consumer.run(drain=True)
    assert await redis_client.exists(RESULT_KEY) == 0
    await wait_until(lambda: _idle_at_least(redis_client, claim_idle_ms))
    worker = make_worker(claim_idle_ms=claim_idle_ms)
    await worker.consumer.run(drain=True)
    assert price_of(await redis_client.get(RESULT_KEY)) == "101.25"
    assert await pending_count(redis_client) == 0


async def test_a_long_task_is_kept_fresh_and_not_reclaimed_while_its_worker_lives(
    redis_client: redis.Redis, make_worker: WorkerFactory, tmp_path: Path
) -> None:
    # The task outlasts 2.6 claim windows, so a worker that failed to renew would lose it to the second
    # one; the window is wide enough that a loop held up for 500 ms by a loaded machine still renews in time.
    claim_idle_ms = 750
    runs = tmp_path / "runs"
    script = write_script(tmp_path, f"echo run >> '{runs}'; sleep 2; echo 55")
    await dispatch(redis_client)
    first = make_worker(script=script, claim_idle_ms=claim_idle_ms)
    first.start()

    async def started() -> bool:
        return runs.exists()

    await wait_until(started)
    second = make_worker(script=script, claim_idle_ms=claim_idle_ms)
    second.start()
    max_idle = 0
    while not await redis_client.exists(RESULT_KEY):
        pending = await redis_client.xpending_range(keys.DISPATCH_STREAM, keys.DISPATCH_GROUP, "-", "+", 10)
        for item in pending:
            assert item["consumer"] == first.consumer.consumer_name.encode()
            max_idle = max(max_idle, item["time_since_delivered"])
        await asyncio.sleep(0.05)
    assert max_idle < claim_idle_ms
    assert runs.read_text().count("run") == 1
    assert second.consumer.outcomes["completed"] == 0


async def test_no_more_tasks_run_at_once_than_the_concurrency(
    redis_client: redis.Redis, make_worker: WorkerFactory, tmp_path: Path
) -> None:
    log = tmp_path / "intervals"
    script = write_script(tmp_path, f"s=$(date +%s.%N); sleep 0.3; echo \"$s $(date +%s.%N)\" >> '{log}'; echo 5")
    for task in range(6):
        await dispatch(redis_client, task_id=str(task + 1))
    await make_worker(script=script, concurrency=2).consumer.run(drain=True)
    intervals = [tuple(map(float, line.split())) for line in log.read_text().splitlines()]
    assert len(intervals) == 6
    overlap = max(sum(1 for s, e in intervals if s <= start < e) for start, _ in intervals)
    assert overlap == 2


async def test_graceful_stop_leaves_an_unfinished_entry_pending_and_kills_its_script(
    redis_client: redis.Redis, make_worker: WorkerFactory, tmp_path: Path
) -> None:
    pid_file = tmp_path / "pid"
    script = write_script(tmp_path, f"sleep 300 & echo $! > '{pid_file}'; wait")
    await dispatch(redis_client)
    worker = make_worker(script=script, shutdown_grace_ms=200, claim_idle_ms=5_000)
    worker.start()

    async def running() -> bool:
        return pid_file.exists() and pid_file.read_text().strip() != ""

    await wait_until(running)
    started = time.monotonic()
    await worker.stop()
    assert time.monotonic() - started < 5
    assert await pending_count(redis_client) == 1
    assert await read_updates(redis_client) == []
    assert await redis_client.exists(RESULT_KEY) == 0
    assert not process_alive(int(pid_file.read_text()))
    # Handed back: it already looks idle, so a live worker reclaims it without waiting.
    [item] = await redis_client.xpending_range(keys.DISPATCH_STREAM, keys.DISPATCH_GROUP, "-", "+", 1)
    assert item["time_since_delivered"] >= 5_000
    await make_worker(claim_idle_ms=5_000).consumer.run(drain=True)
    assert price_of(await redis_client.get(RESULT_KEY)) == "101.25"


async def test_graceful_stop_lets_a_short_task_finish_within_the_grace(
    redis_client: redis.Redis, make_worker: WorkerFactory, tmp_path: Path
) -> None:
    marker = tmp_path / "started"
    await dispatch(redis_client)
    worker = make_worker(script=write_script(tmp_path, f"touch '{marker}'; sleep 0.4; echo 9"))
    worker.start()

    async def running() -> bool:
        return marker.exists()

    await wait_until(running)
    await worker.stop()
    assert await pending_count(redis_client) == 0
    [update] = await read_updates(redis_client)
    assert update.status == "completed"


async def test_stop_before_run_returns_at_once_without_taking_work(
    redis_client: redis.Redis, make_worker: WorkerFactory
) -> None:
    await dispatch(redis_client)
    worker = make_worker()
    worker.consumer.stop_fetching()
    worker.consumer.stop_fetching()  # a second stop is harmless
    await asyncio.wait_for(worker.consumer.run(), 5)
    assert sum(worker.consumer.outcomes.values()) == 0
    assert await redis_client.exists(RESULT_KEY) == 0 and await read_updates(redis_client) == []
    groups = await redis_client.xinfo_groups(keys.DISPATCH_STREAM)
    assert all(int(group["entries-read"] or 0) == 0 for group in groups)  # the entry was never delivered


async def test_the_worker_survives_a_redis_restart(
    redis_client: redis.Redis, make_worker: WorkerFactory, redis_server: object
) -> None:
    from tests.conftest import RedisServer

    assert isinstance(redis_server, RedisServer)
    worker = make_worker()
    worker.start()
    await dispatch(redis_client, task_id="1")

    async def first_done() -> bool:
        return await redis_client.exists(RESULT_KEY) == 1

    await wait_until(first_done)
    redis_server.stop()
    await asyncio.sleep(0.5)
    assert worker.task is not None and not worker.task.done()
    redis_server.start()

    async def reconnected() -> bool:
        try:
            return bool(await redis_client.ping())
        except redis.ConnectionError:
            return False

    await wait_until(reconnected)
    await dispatch(redis_client, task_id="2")

    async def second_done() -> bool:
        return await redis_client.exists(keys.task_result_key("req-1", 0, "2")) == 1

    await wait_until(second_done, timeout=20)
    # The restarted Redis kept nothing (no persistence), so only the second task's update is there.
    [update] = await read_updates(redis_client)
    assert (update.task_id, update.status) == ("2", "completed")


async def test_the_in_process_executor_runs_through_the_same_loop(
    redis_client: redis.Redis, make_worker: WorkerFactory
) -> None:
    await dispatch(redis_client)
    worker = make_worker(executor=PythonExecutor("tests.vnas.pricers:flat_price", 5))
    await worker.consumer.run(drain=True)
    assert price_of(await redis_client.get(RESULT_KEY)) == "100.13"


async def test_a_thousand_task_group_drains_with_every_task_completed_once(
    redis_client: redis.Redis, make_worker: WorkerFactory, tmp_path: Path
) -> None:
    script = write_script(tmp_path, "echo 100")
    async with redis_client.pipeline(transaction=False) as pipe:
        for task in range(1000):
            pipe.set(keys.task_xml_key("req-1", 0, str(task)), b"<vnml><project><group><valuation/>"
                     b"</group></project></vnml>")
        await pipe.execute()
    for task in range(1000):
        await dispatch(redis_client, task_id=str(task), xml=None)
    worker = make_worker(script=script, concurrency=4)
    # Speed is the benchmark's to measure (`make bench`, script_1x1000), not this test's to assert.
    await worker.consumer.run(drain=True)
    assert worker.consumer.outcomes["completed"] == 1000, worker.consumer.outcomes
    assert await pending_count(redis_client) == 0
    updates = await read_updates(redis_client)
    assert sorted(int(update.task_id) for update in updates) == list(range(1000))


async def test_an_entry_delivered_beyond_its_budget_is_dead_lettered_not_run(
    redis_client: redis.Redis, make_worker: WorkerFactory
) -> None:
    await dispatch(redis_client, max_deliveries=2)
    await redis_client.xgroup_create(keys.DISPATCH_STREAM, keys.DISPATCH_GROUP, id="0", mkstream=True)
    # Two workers took the entry and died before settling it (two deliveries used up).
    await redis_client.xreadgroup(keys.DISPATCH_GROUP, "dead-1", {keys.DISPATCH_STREAM: ">"}, count=1)
    await redis_client.xautoclaim(keys.DISPATCH_STREAM, keys.DISPATCH_GROUP, "dead-2", 0, "0-0")
    await wait_until(lambda: _idle_at_least(redis_client, 50))
    worker = make_worker(claim_idle_ms=50)
    await worker.consumer.run(drain=True)
    assert await redis_client.exists(RESULT_KEY) == 0
    assert await pending_count(redis_client) == 0
    [update] = await read_updates(redis_client)
    assert update.status == "failed" and update.deliveries == 2 and "poison task" in update.error
    [(_, record)] = await redis_client.xrange(keys.DEADLETTER_STREAM)
    assert record[b"requestId"] == b"req-1" and record[b"taskId"] == b"1" and record[b"deliveries"] == b"2"
    assert record[b"payloadKey"] and record[b"error"].startswith(b"poison task")
    assert worker.consumer.outcomes["dead_lettered"] == 1


async def test_a_reclaimed_entry_within_its_budget_runs_and_reports_its_deliveries(
    redis_client: redis.Redis, make_worker: WorkerFactory
) -> None:
    await dispatch(redis_client, max_deliveries=3)
    await redis_client.xgroup_create(keys.DISPATCH_STREAM, keys.DISPATCH_GROUP, id="0", mkstream=True)
    await redis_client.xreadgroup(keys.DISPATCH_GROUP, "dead-worker", {keys.DISPATCH_STREAM: ">"}, count=1)
    await wait_until(lambda: _idle_at_least(redis_client, 50))
    await make_worker(claim_idle_ms=50).consumer.run(drain=True)
    [update] = await read_updates(redis_client)
    assert (update.status, update.deliveries) == ("completed", 2)


async def test_a_settle_redis_keeps_refusing_is_given_up_after_the_grace_and_its_entry_handed_back(
    redis_client: redis.Redis, make_worker: WorkerFactory
) -> None:
    # The updates stream name holds a string, so every settle is refused and retried.
    blocked = "stream:task:updates:{req-1}"
    await redis_client.set(blocked, "not a stream")
    await dispatch(redis_client, updates=blocked)
    worker = make_worker(shutdown_grace_ms=300, claim_idle_ms=5_000)
    worker.start()

    async def settle_was_tried() -> bool:
        return await redis_client.exists(RESULT_KEY) == 1

    await wait_until(settle_was_tried)
    started = time.monotonic()
    await worker.stop()
    assert time.monotonic() - started < 5
    assert worker.consumer.outcomes["completed"] == 0
    [item] = await redis_client.xpending_range(keys.DISPATCH_STREAM, keys.DISPATCH_GROUP, "-", "+", 1)
    assert item["time_since_delivered"] >= 5_000


async def test_a_deleted_dispatch_stream_is_recreated_and_the_worker_keeps_working(
    redis_client: redis.Redis, make_worker: WorkerFactory
) -> None:
    worker = make_worker()
    worker.start()
    await dispatch(redis_client, task_id="1")

    async def first_done() -> bool:
        return await redis_client.exists(RESULT_KEY) == 1

    await wait_until(first_done)
    await redis_client.delete(keys.DISPATCH_STREAM)  # the stream and its group are gone (NOGROUP)
    await asyncio.sleep(0.3)
    await dispatch(redis_client, task_id="2")

    async def second_done() -> bool:
        # The result lands before the ack and the count: wait for the settle to have ended.
        return (await redis_client.exists(keys.task_result_key("req-1", 0, "2")) == 1
                and worker.consumer.outcomes["completed"] == 2)

    await wait_until(second_done)
    assert worker.task is not None and not worker.task.done()
    assert worker.consumer.outcomes["completed"] == 2


async def _settle_calls(client: redis.Redis) -> int:
    """Acknowledgements Redis ran so far: one per settle script call (nothing else acknowledges here)."""
    stats = await client.info("commandstats")
    return int(stats.get("cmdstat_xack", {}).get("calls", 0))


async def test_short_tasks_fetched_together_settle_together_in_one_script_call(
    redis_client: redis.Redis, make_worker: WorkerFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A generous gather window, so a loaded test machine cannot make the pricer look slower than it.
    monkeypatch.setattr(settler, "GATHER_S", 0.5)
    worker = make_worker(executor=PythonExecutor("tests.vnas.pricers:bare_valuation", 5), concurrency=4)
    worker.start()
    await dispatch(redis_client, task_id="0", inline=True)  # the worker learns how long a task takes
    await wait_until(lambda: _completed(worker, 1))
    # Its next read, issued once that task is done, asks for a whole batch (a read already blocked
    # when the first task was still unmeasured asks for the free slots only); reads block 100 ms.
    await asyncio.sleep(0.3)
    before = await _settle_calls(redis_client)
    async with redis_client.pipeline(transaction=True) as pipe:  # ten entries the worker fetches at once
        for task_id in range(1, 11):
            entry = _inline_entry(str(task_id))
            pipe.xadd(keys.DISPATCH_STREAM, entry)
        await pipe.execute()
    await wait_until(lambda: _completed(worker, 11))
    # More tasks than slots, yet one settle: each slot was free again while the batch waited.
    assert await _settle_calls(redis_client) - before == 1
    assert sorted(int(u.task_id) for u in await read_updates(redis_client)) == list(range(11))
    assert await pending_count(redis_client) == 0


async def _completed(worker: Worker, count: int) -> bool:
    return worker.consumer.outcomes["completed"] >= count


def _inline_entry(task_id: str) -> dict[Any, Any]:
    entry = streams_pb2.TaskDispatch(
        request_id="req-1", group_index=0, group_name="price", task_id=task_id, valuation_name="bond",
        result_key=keys.task_result_key("req-1", 0, task_id), attempt=1,
        updates_stream=keys.updates_stream("req-1"), payload=TASK_XML.decode())
    return to_fields(entry)


async def test_keep_fresh_renews_its_own_entries_and_names_only_those_another_worker_holds(
    redis_client: redis.Redis,
) -> None:
    for task_id in ("1", "2", "3"):
        await redis_client.xadd(keys.DISPATCH_STREAM, {"requestId": "req-1", "taskId": task_id})
    await redis_client.xgroup_create(keys.DISPATCH_STREAM, keys.DISPATCH_GROUP, id="0")
    read = await redis_client.xreadgroup(keys.DISPATCH_GROUP, "me", {keys.DISPATCH_STREAM: ">"}, count=3)
    settled, reclaimed, mine = [text(entry_id) for entry_id, _ in read[0][1]]
    await redis_client.xack(keys.DISPATCH_STREAM, keys.DISPATCH_GROUP, settled)  # its settle is landing
    await redis_client.xclaim(keys.DISPATCH_STREAM, keys.DISPATCH_GROUP, "other", 0, [reclaimed])
    await asyncio.sleep(0.2)
    stream = DispatchStream(redis_client, "me")
    assert await stream.keep_fresh([settled, reclaimed, mine]) == {reclaimed}
    pending = {text(item["message_id"]): item for item in await redis_client.xpending_range(
        keys.DISPATCH_STREAM, keys.DISPATCH_GROUP, "-", "+", 10)}
    assert set(pending) == {reclaimed, mine}
    assert pending[mine]["consumer"] == b"me" and pending[reclaimed]["consumer"] == b"other"
    # Renewed after the pause, so idle for less time than the one claimed before it (whatever the machine).
    assert pending[mine]["time_since_delivered"] < pending[reclaimed]["time_since_delivered"] - 100
