"""Trimming a consumer-group stream without ever dropping an entry a group still needs.

XADD's own MAXLEN would cut the oldest entries even when they are pending (Redis 7 has no
"acknowledged only" trim), so consumers trim instead: only below the oldest entry that any group has
pending or not yet delivered, and only once the stream is longer than its MAXLEN.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from typing import Any

import redis.asyncio as redis
from redis.exceptions import ResponseError

from vncommon.streams import text


def _parse_id(entry_id: str) -> tuple[int, int]:
    millis, _, seq = entry_id.partition("-")
    return int(millis), int(seq or 0)


async def safe_trim_id(client: redis.Redis, stream: str) -> str | None:
    """The smallest id some group still needs (entries below it are finished); None if unknown."""
    groups: Any = await client.xinfo_groups(stream)
    if not groups:
        return None
    bounds: list[str] = []
    for group in groups:
        name = text(group["name"])
        summary: Any = await client.xpending(stream, name)
        if summary and summary.get("pending"):
            bounds.append(text(summary["min"]))
        else:
            # MINID keeps ids >= the bound, so the last delivered entry and all later ones stay.
            bounds.append(text(group["last-delivered-id"]))
    return min(bounds, key=_parse_id)


async def trim_stream(client: redis.Redis, stream: str, maxlen: int) -> int:
    """Trim finished entries once `stream` is longer than `maxlen`; returns how many went."""
    if await client.xlen(stream) <= maxlen:
        return 0
    bound = await safe_trim_id(client, stream)
    if bound is None or bound == "0-0":
        return 0
    return int(await client.xtrim(stream, minid=bound, approximate=True))


async def prune_consumers(client: redis.Redis, stream: str, group: str, idle_ms: int) -> list[str]:
    """Remove consumers of `group` that hold no pending entry and were idle longer than `idle_ms`.

    Every restarted worker joins under a new name; without pruning, a group's consumer list grows with
    every restart. A consumer with pending entries is kept, so nothing it holds can be lost.
    """
    consumers: Any = await client.xinfo_consumers(stream, group)
    removed: list[str] = []
    for consumer in consumers:
        if int(consumer["pending"]) == 0 and int(consumer["idle"]) > idle_ms:
            name = text(consumer["name"])
            await client.xgroup_delconsumer(stream, group, name)
            removed.append(name)
    return removed


class StreamUpkeep:
    """Trims a consumer-group stream and prunes its departed consumers, at most once per interval."""

    def __init__(self, client: redis.Redis, stream: str, group: str, maxlen: int, interval_s: float = 10.0,
                 consumer_idle_ms: int = 3_600_000) -> None:
        self._client = client
        self._stream = stream
        self._group = group
        self._maxlen = maxlen
        self._interval_s = interval_s
        self._consumer_idle_ms = consumer_idle_ms
        self._next = 0.0

    async def maybe_run(self) -> None:
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + self._interval_s
        await trim_stream(self._client, self._stream, self._maxlen)
        with contextlib.suppress(ResponseError):  # no stream or group yet: nothing to prune
            await prune_consumers(self._client, self._stream, self._group, self._consumer_idle_ms)


class ShardUpkeep:
    """A StreamUpkeep per shard of a stream (STREAM_SHARDS), run one after the other."""

    def __init__(self, client: redis.Redis, streams: Sequence[str], group: str, maxlen: int,
                 interval_s: float = 10.0) -> None:
        self._parts = [StreamUpkeep(client, stream, group, maxlen, interval_s) for stream in streams]

    async def maybe_run(self) -> None:
        for part in self._parts:
            await part.maybe_run()
