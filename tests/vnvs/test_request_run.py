"""RequestRun in-process against real Redis, with the fake worker: groups in order, results flowing into
later groups, the assembled response, lifecycle events, retries and their exhaustion."""

from __future__ import annotations

import json

import redis.asyncio as redis

from tests.conftest import RedisServer
from tests.vnvs.fake_worker import FakeWorker
from tests.vnvs.run_support import (
    AMOUNTS,
    TASKS,
    amounts,
    assert_succeeded_once,
    book,
    events,
    failing,
    failure,
    make_settings,
    price_book,
    published,
    run,
    status,
    store_request,
)
from vncommon import keys
from vncommon.xmlsafe import parse_xml


async def test_groups_run_in_order_each_seeing_the_results_of_the_one_before(
    redis_client: redis.Redis, redis_server: RedisServer
) -> None:
    rid = await store_request(redis_client, book())
    async with FakeWorker(redis_client, price_book).running() as worker:
        await run(redis_client, make_settings(redis_server), rid)
    response = await assert_succeeded_once(redis_client, rid)
    assert amounts(response) == AMOUNTS
    # Strictly in order: no task of a group ran before every task of the group before it.
    groups = [group for group, _, _ in worker.runs]
    assert groups == sorted(groups)
    assert worker.executions == {(g, t): 1 for g, ids in TASKS.items() for t in ids}


async def test_the_response_wraps_the_project_without_its_reference_data(
    redis_client: redis.Redis, redis_server: RedisServer
) -> None:
    rid = await store_request(redis_client, book())
    async with FakeWorker(redis_client, price_book).running():
        await run(redis_client, make_settings(redis_server), rid)
    root = parse_xml(await assert_succeeded_once(redis_client, rid), what="response")
    assert (root.tag, root.get("requestId"), root.get("status")) == ("vnml-response", rid, "succeeded")
    project = root.find("project")
    assert project is not None and project.get("name") == "book"
    assert [child.tag for child in project] == ["group", "group", "group"]
    assert [group.get("name") for group in project] == ["price", "risk", "total"]
    assert all("use" not in valuation.attrib for valuation in project.iter("valuation"))


async def test_the_state_records_every_group_completed_and_the_end(
    redis_client: redis.Redis, redis_server: RedisServer
) -> None:
    rid = await store_request(redis_client, book())
    async with FakeWorker(redis_client, price_book).running():
        await run(redis_client, make_settings(redis_server), rid)
    state = await redis_client.hgetall(keys.request_state_key(rid))
    assert state[b"status"] == b"succeeded" and state[b"startedAt"] and state[b"completedAt"]
    assert state[b"currentGroup"] == b"2"
    for group_index, ids in TASKS.items():
        group = await redis_client.hgetall(keys.group_state_key(rid, group_index))
        assert (group[b"status"], int(group[b"completed"]), int(group[b"expected"])) == (
            b"completed", len(ids), len(ids))
    # Retention started: the request's data expires, the lease and the updates stream are gone.
    assert 0 < await redis_client.ttl(keys.request_response_key(rid)) <= 3600
    assert await redis_client.exists(keys.updates_stream(rid), keys.lease_key(rid)) == 0


async def test_a_task_that_fails_once_is_retried_and_the_request_succeeds(
    redis_client: redis.Redis, redis_server: RedisServer
) -> None:
    rid = await store_request(redis_client, book())
    price = failing(price_book, lambda d: (d.group_index, d.task_id, d.attempt) == (1, "2", 1))
    async with FakeWorker(redis_client, price).running() as worker:
        await run(redis_client, make_settings(redis_server), rid)
    response = await assert_succeeded_once(redis_client, rid)
    assert amounts(response) == AMOUNTS
    risk = [(task, attempt) for group, task, attempt in worker.runs if group == 1]
    assert sorted(risk) == [("1", 1), ("2", 1), ("2", 2)] and risk[-1] == ("2", 2)
    assert worker.executions[(1, "2")] == 2 and worker.executions[(1, "1")] == 1
    assert await redis_client.hget(keys.request_state_key(rid), "retryCount") == b"1"
    assert await redis_client.hget(keys.group_tasks_key(rid, 1), "2") == b"2"


async def test_a_task_that_always_fails_exhausts_its_attempts_and_fails_the_request(
    redis_client: redis.Redis, redis_server: RedisServer
) -> None:
    rid = await store_request(redis_client, book())
    price = failing(price_book, lambda d: (d.group_index, d.task_id) == (1, "1"))
    async with FakeWorker(redis_client, price).running() as worker:
        await run(redis_client, make_settings(redis_server, max_task_retries=3), rid)
    assert await status(redis_client, rid) == "failed"
    assert worker.executions[(1, "1")] == 3
    assert worker.executions[(2, "1")] == 0  # the request stops at the failed group
    detail = await failure(redis_client, rid)
    assert detail["reason"] == "TASK_RETRIES_EXHAUSTED"
    assert (detail["group"], detail["groupIndex"], detail["taskId"], detail["attempts"]) == ("risk", "1", "1", "3")
    assert detail["error"] == "pricer exploded on attempt 3"
    assert detail["message"] == "task 1 of group 1 (risk) failed after 3 attempts: pricer exploded on attempt 3"
    assert await events(redis_client, rid) == [
        ("received", -1), ("started", -1), ("group_started", 0), ("group_completed", 0), ("group_started", 1),
        ("failed", -1)]
    terminal = (await published(redis_client, rid))[-1]
    assert terminal.status == "failed" and json.loads(terminal.detail) == detail
    group = await redis_client.hgetall(keys.group_state_key(rid, 1))
    assert (group[b"status"], group[b"failed"]) == (b"failed", b"1")
    assert await redis_client.exists(keys.request_response_key(rid)) == 0
