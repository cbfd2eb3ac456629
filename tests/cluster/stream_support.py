"""What the shard and tier tests share: filling a stream with numbered entries that name their stream."""

from __future__ import annotations

import redis.asyncio as redis


async def fill_stream(client: redis.Redis, stream: str, count: int) -> None:
    async with client.pipeline(transaction=False) as pipe:
        for number in range(count):
            pipe.xadd(stream, {"n": str(number), "stream": stream})
        await pipe.execute()
