"""The services' Redis pool: a blocking stream read survives an event loop held for longer than redis-py's
default 5 s read timeout, and large values go to the socket without being copied into the command."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis
import redis.asyncio as aioredis

from tests.conftest import RedisServer
from vncommon.consumergroup import ConsumerGroup
from vncommon.redisconn import LARGE_VALUE_BYTES, create_redis

pytestmark = pytest.mark.timeout(60)
STALL_S = 5.5  # longer than redis-py's default socket timeout


async def test_an_entry_read_while_the_loop_is_held_is_delivered_by_that_read(
    redis_client: aioredis.Redis, redis_server: RedisServer
) -> None:
    client = create_redis(redis_server.url)
    writer = redis.Redis.from_url(redis_server.url)
    try:
        group = ConsumerGroup(client, "stream:test", "readers", "reader-1")
        await group.ensure_group()
        read = asyncio.create_task(group.read_new(10, block_ms=1000))
        await asyncio.sleep(0.1)  # XREADGROUP ... BLOCK is on the wire
        added = writer.xadd("stream:test", {"n": "1"}).decode()
        time.sleep(STALL_S)  # noqa: ASYNC251  # the loop is held, as CPU-bound work on it would
        entries = await asyncio.wait_for(read, 10)
        # A timed-out read would have been retried: the entry, delivered to the first try, would sit
        # pending until a reclaim instead of arriving here.
        assert [entry.entry_id for entry in entries] == [added]
    finally:
        writer.close()
        await client.aclose()


async def test_a_large_value_is_stored_whole(redis_client: aioredis.Redis, redis_server: RedisServer) -> None:
    client = create_redis(redis_server.url)
    try:
        value = bytes(range(256)) * (LARGE_VALUE_BYTES // 64)
        async with client.pipeline(transaction=True) as pipe:
            pipe.set("big", value)
            pipe.set("small", b"x")
            await pipe.execute()
        assert await redis_client.get("big") == value and await redis_client.get("small") == b"x"
    finally:
        await client.aclose()
