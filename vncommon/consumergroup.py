"""The Redis commands of one named consumer in one consumer group of one stream.

Creating the group, reading new entries, taking over idle ones, acknowledging, and handing back what
this consumer still holds: every stream consumer (vnapi's ingest, vnas's dispatch) uses these, so
each command is written once. When to call them is `vncommon.consumer`'s business.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis.asyncio as redis
from redis.exceptions import ResponseError

from vncommon.streams import text

FULL_PASS = "0-0"  # the XAUTOCLAIM cursor that starts a pass over the pending list, and ends one


@dataclass(frozen=True, slots=True)
class StreamEntry:
    """One stream entry as delivered to this consumer."""

    entry_id: str
    fields: dict[str, str]
    deliveries: int = 1  # how often the group delivered it; more than 1 after a reclaim


@dataclass(frozen=True, slots=True)
class ClaimBatch:
    """What one XAUTOCLAIM call returned and where the next scan starts."""

    entries: list[StreamEntry]
    cursor: str
    deleted: list[str]  # pending ids whose entries were trimmed away before anyone settled them


def is_missing_group(error: Exception) -> bool:
    """NOGROUP: the stream (and with it the group) was deleted; it must be created again."""
    return isinstance(error, ResponseError) and "NOGROUP" in str(error)


def parse_entries(raw: list[Any]) -> list[StreamEntry]:
    """The entries of an XREADGROUP / XAUTOCLAIM reply for one stream."""
    found: list[StreamEntry] = []
    for entry_id, fields in raw:
        if entry_id is None or fields is None:  # XAUTOCLAIM's placeholder for a trimmed entry
            continue
        found.append(StreamEntry(text(entry_id), {text(k): text(v) for k, v in fields.items()}))
    return found


class ConsumerGroup:
    """`consumer` in group `group` of `stream`."""

    def __init__(self, client: redis.Redis, stream: str, group: str, consumer: str) -> None:
        self.client = client
        self.stream = stream
        self.group = group
        self.consumer = consumer

    async def ensure_group(self) -> None:
        """Create the group (and the stream) from the first entry; a group that exists is fine."""
        try:
            await self.client.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def read_new(self, count: int, block_ms: int | None) -> list[StreamEntry]:
        """Entries never delivered to anyone; `block_ms=None` returns at once."""
        reply: Any = await self.client.xreadgroup(self.group, self.consumer, {self.stream: ">"},
                                                  count=count, block=block_ms)
        entries: list[StreamEntry] = []
        for _stream, raw in reply or []:
            entries.extend(parse_entries(raw))
        return entries

    async def autoclaim(self, min_idle_ms: int, cursor: str, count: int) -> ClaimBatch:
        """Take over entries other (presumably dead) consumers left idle for at least `min_idle_ms`,
        each with its delivery count."""
        reply: Any = await self.client.xautoclaim(self.stream, self.group, self.consumer, min_idle_ms,
                                                  start_id=cursor, count=count)
        deleted = [text(item) for item in reply[2]] if len(reply) > 2 else []
        entries = await self._with_deliveries(parse_entries(reply[1]))
        return ClaimBatch(entries, text(reply[0]), deleted)

    async def _with_deliveries(self, entries: list[StreamEntry]) -> list[StreamEntry]:
        """Attach each claimed entry's delivery count (XPENDING), one pipelined round trip."""
        if not entries:
            return entries
        async with self.client.pipeline(transaction=False) as pipe:
            for entry in entries:
                pipe.xpending_range(self.stream, self.group, entry.entry_id, entry.entry_id, 1)
            replies: list[Any] = await pipe.execute()
        counted = []
        for entry, reply in zip(entries, replies, strict=True):
            deliveries = int(reply[0]["times_delivered"]) if reply else entry.deliveries
            counted.append(StreamEntry(entry.entry_id, entry.fields, deliveries))
        return counted

    async def keep_claimed(self, entry_id: str) -> bool:
        """Reset an entry's idle time so no other consumer reclaims it meanwhile; False once it is not ours."""
        owned: Any = await self.client.xclaim(self.stream, self.group, self.consumer, 0, [entry_id], justid=True)
        return bool(owned)

    async def ack(self, *entry_ids: str) -> None:
        await self.client.xack(self.stream, self.group, *entry_ids)

    async def hand_back(self, idle_ms: int, limit: int) -> list[str]:
        """Mark up to `limit` of this consumer's pending entries idle, so live consumers reclaim them at
        once instead of after the claim idle time; returns their ids."""
        pending: Any = await self.client.xpending_range(self.stream, self.group, "-", "+", limit,
                                                        consumername=self.consumer)
        ids: list[Any] = [text(item["message_id"]) for item in pending]
        if ids:
            await self.client.xclaim(self.stream, self.group, self.consumer, 0, ids, idle=idle_ms, justid=True)
        return [str(entry_id) for entry_id in ids]
