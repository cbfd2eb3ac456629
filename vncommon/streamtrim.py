"""Trimming a consumer-group stream without ever dropping an entry a group still needs.

XADD's own MAXLEN would cut the oldest entries even when they are pending (Redis 7 has no
"acknowledged only" trim), so consumers trim instead: only below the oldest entry that any group has
pending or not yet delivered, and only once the stream is longer than its MAXLEN.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as redis


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


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
        name = _text(group["name"])
        summary: Any = await client.xpending(stream, name)
        if summary and summary.get("pending"):
            bounds.append(_text(summary["min"]))
        else:
            # MINID keeps ids >= the bound, so the last delivered entry and all later ones stay.
            bounds.append(_text(group["last-delivered-id"]))
    return min(bounds, key=_parse_id)


async def trim_stream(client: redis.Redis, stream: str, maxlen: int) -> int:
    """Trim finished entries once `stream` is longer than `maxlen`; returns how many went."""
    if await client.xlen(stream) <= maxlen:
        return 0
    bound = await safe_trim_id(client, stream)
    if bound is None or bound == "0-0":
        return 0
    return int(await client.xtrim(stream, minid=bound, approximate=True))
