"""A request hydration cannot turn into tasks fails at once, with a detail that names the expression, the
element and the group, and sends no task of the failing group."""

from __future__ import annotations

import redis.asyncio as redis

from tests.conftest import RedisServer
from tests.vnvs.fake_worker import FakeWorker
from tests.vnvs.run_support import (
    book,
    events,
    failure,
    make_settings,
    price_book,
    published,
    run,
    status,
    store_request,
)
from vncommon import keys


async def test_an_expression_that_finds_nothing_fails_the_request_at_its_group(
    redis_client: redis.Redis, redis_server: RedisServer
) -> None:
    rid = await store_request(redis_client, book(risk_base="./missing/text()"))
    async with FakeWorker(redis_client, price_book).running() as worker:
        await run(redis_client, make_settings(redis_server), rid)
    assert await status(redis_client, rid) == "failed"
    detail = await failure(redis_client, rid)
    assert detail["reason"] == "HYDRATION_FAILED"
    assert (detail["expression"], detail["groupName"], detail["groupIndex"]) == ("./missing/text()", "risk", "1")
    assert detail["elementPath"] == "/vnml/project/group[2]/valuation[1]/base"
    assert "./missing/text()" in detail["message"] and "group 'risk' (index 1)" in detail["message"]
    # The group before it ran; the failing group sent nothing.
    assert set(worker.executions) == {(0, "1"), (0, "2")}
    assert await redis_client.xlen(keys.DISPATCH_STREAM) == 2
    assert await events(redis_client, rid) == [
        ("received", -1), ("started", -1), ("group_started", 0), ("group_completed", 0), ("failed", -1)]
    group = await redis_client.hgetall(keys.group_state_key(rid, 1))
    assert group[b"status"] == b"failed"


async def test_a_first_group_hydrated_with_the_whole_document_pass_fails_as_group_0(
    redis_client: redis.Redis, redis_server: RedisServer
) -> None:
    # A fresh run hydrates group 0 in the job of the whole-document pass; its failure is still group 0's.
    xml = book().replace(b'<instrument select="."/>', b'<instrument select="./missing"/>', 1)
    rid = await store_request(redis_client, xml)
    async with FakeWorker(redis_client, price_book).running() as worker:
        await run(redis_client, make_settings(redis_server), rid)
    detail = await failure(redis_client, rid)
    assert (detail["reason"], detail["expression"], detail["groupName"]) == ("HYDRATION_FAILED", "./missing", "price")
    assert detail["groupIndex"] == "0" and "group 'price' (index 0)" in detail["message"]
    assert not worker.executions and await redis_client.xlen(keys.DISPATCH_STREAM) == 0
    assert await events(redis_client, rid) == [("received", -1), ("started", -1), ("failed", -1)]
    group = await redis_client.hgetall(keys.group_state_key(rid, 0))
    assert group[b"status"] == b"failed"


async def test_a_refused_href_scheme_fails_the_request_before_any_group_runs(
    redis_client: redis.Redis, redis_server: RedisServer
) -> None:
    market = '<market name="EOD" href="http://example.com/eod.xml"/>\n    <portfolio>'
    rid = await store_request(redis_client, book().replace(b"<portfolio>", market.encode(), 1))
    async with FakeWorker(redis_client, price_book).running() as worker:
        await run(redis_client, make_settings(redis_server), rid)
    assert await status(redis_client, rid) == "failed"
    detail = await failure(redis_client, rid)
    assert detail["reason"] == "HYDRATION_FAILED"
    assert (detail["expression"], detail["elementPath"]) == ("http://example.com/eod.xml", "/vnml/project/market")
    assert "scheme 'http' is not allowed" in detail["message"] and "the whole document" in detail["message"]
    # The whole-document pass failed: no group was reached, so none is named or marked failed.
    assert detail["groupIndex"] == -1 and "groupName" not in detail
    assert await redis_client.exists(keys.group_state_key(rid, 0)) == 0
    assert not worker.executions and await redis_client.xlen(keys.DISPATCH_STREAM) == 0
    assert await events(redis_client, rid) == [("received", -1), ("started", -1), ("failed", -1)]
    terminal = (await published(redis_client, rid))[-1]
    assert terminal.status == "failed" and "http://example.com/eod.xml" in terminal.detail
