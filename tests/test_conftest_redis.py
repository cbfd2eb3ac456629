"""The shared Redis fixture gives each test an empty, real server."""

import redis.asyncio as redis


async def test_each_test_starts_with_an_empty_redis(redis_client: redis.Redis) -> None:
    assert await redis_client.dbsize() == 0
    await redis_client.set("k", "v")
    assert await redis_client.get("k") == b"v"
