"""Each lifecycle event of a request is published once, even when the run dies just before publishing
it: the resumed run publishes what the dead one never wrote, and nothing twice."""

from __future__ import annotations

import pytest
import redis.asyncio as redis

from tests.conftest import RedisServer
from tests.vnvs.fake_worker import FakeWorker
from tests.vnvs.run_support import (
    AMOUNTS,
    ONCE_EACH,
    Crash,
    amounts,
    assert_succeeded_once,
    book,
    crash_before_event,
    events,
    make_settings,
    price_book,
    run,
    store_request,
)


@pytest.mark.parametrize("event", [("started", -1), ("group_started", 0), ("group_completed", 0),
                                   ("group_started", 1), ("group_completed", 2)])
async def test_a_run_that_died_just_before_publishing_an_event_leaves_it_to_the_resumed_run(
    redis_client: redis.Redis, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch,
    event: tuple[str, int],
) -> None:
    rid = await store_request(redis_client, book())
    settings = make_settings(redis_server)
    crash_before_event(monkeypatch, *event)
    async with FakeWorker(redis_client, price_book).running() as worker:
        with pytest.raises(Crash):
            await run(redis_client, settings, rid)
        assert event not in await events(redis_client, rid)
        await run(redis_client, settings, rid)
    assert amounts(await assert_succeeded_once(redis_client, rid)) == AMOUNTS
    assert worker.executions == ONCE_EACH
