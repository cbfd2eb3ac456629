"""A busy process does not make its Redis calls fail: a run blocked on its updates stream while the event
loop is held for longer than redis-py's old 5 s socket timeout goes on and succeeds, unaborted."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis.asyncio as redis

from tests.conftest import RedisServer, wait_until
from tests.vnvs.fake_worker import FakeWorker
from tests.vnvs.run_support import assert_succeeded_once, book, make_settings, new_run, price_book, store_request
from vncommon import keys
from vncommon.redisconn import create_redis

pytestmark = pytest.mark.timeout(60)
# Longer than the 5 s read timeout redis-py puts on a connection unless told otherwise.
STALL_S = 5.5


async def test_a_run_blocked_on_its_updates_survives_a_loop_stalled_past_the_old_read_timeout(
    redis_client: redis.Redis, redis_server: RedisServer
) -> None:
    rid = await store_request(redis_client, book())
    client = create_redis(redis_server.url)  # the pool the services use
    try:
        settings = make_settings(redis_server, lease_ms=60_000)
        task = asyncio.create_task((await new_run(client, settings, rid)).run())

        async def dispatched() -> bool:
            return bool(await redis_client.xlen(keys.DISPATCH_STREAM))

        await wait_until(dispatched)
        await asyncio.sleep(0.1)  # the run is now blocked in XREAD on its updates stream (no worker yet)
        time.sleep(STALL_S)  # noqa: ASYNC251  # the point: the whole loop is held, as CPU-bound work would
        assert not task.done(), "the run ended while the loop was held"
        async with FakeWorker(redis_client, price_book).running():
            await asyncio.wait_for(task, 20)
    finally:
        await client.aclose()
    await assert_succeeded_once(redis_client, rid)
    # One run from start to end: nothing aborted and resumed.
    assert await redis_client.hget(keys.request_state_key(rid), "runStarts") in (b"0", b"1")
