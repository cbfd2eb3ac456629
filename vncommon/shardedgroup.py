"""One consumer of one group over the shards of a global stream (STREAM_SHARDS), as one ConsumerGroup.

With a single stream every method is `ConsumerGroup`'s own, unchanged. With several, entries carry
qualified ids (`<entry id>@<stream index>`: ids of different streams may be equal) and each command goes
to the entry's stream. Reading is fair: no shard starves while another is busy.

- One Redis: one XREADGROUP over every stream, COUNT split between them (COUNT applies per stream),
  the stream order rotated on each read.
- A cluster: the shards live in different slots, and one command may not span slots, so each shard has
  its own blocking read outstanding; whichever answers first is served, the others keep waiting.

Both can return a few more entries than asked (at most one batch per shard): the surplus is kept here
and handed out first on the next read, shards interleaved. Those entries are pending for this consumer
like any other, so a crash or a stop leaves them to a reclaim, and `hand_back` gives them back.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import deque
from collections.abc import Sequence
from typing import Any

import redis.asyncio as redis

from vncommon.consumergroup import FULL_PASS, ClaimBatch, ConsumerGroup, StreamEntry, parse_entries
from vncommon.rediscluster import is_cluster
from vncommon.streams import text

SEPARATOR = "@"


class ShardedGroup(ConsumerGroup):
    """`consumer` in group `group` of every stream in `streams` (the first is also `self.stream`)."""

    def __init__(self, client: redis.Redis, streams: Sequence[str], group: str, consumer: str) -> None:
        super().__init__(client, streams[0], group, consumer)
        self.streams = list(streams)
        self._parts = [ConsumerGroup(client, stream, group, consumer) for stream in self.streams]
        self._sharded = len(self.streams) > 1
        self._cluster = is_cluster(client)
        self._surplus: deque[StreamEntry] = deque()
        self._reads: dict[int, asyncio.Task[list[StreamEntry]]] = {}
        self._rotation = 0

    # -- qualified ids -----------------------------------------------------------------------------

    def _qualified(self, index: int, entry: StreamEntry) -> StreamEntry:
        return dataclasses.replace(entry, entry_id=f"{entry.entry_id}{SEPARATOR}{index}")

    def locate(self, entry_id: str) -> tuple[int, str]:
        """(stream index, id within that stream) of an entry id this group handed out."""
        if not self._sharded:
            return 0, entry_id
        raw, _, index = entry_id.rpartition(SEPARATOR)
        return int(index), raw

    def stream_of(self, entry_id: str) -> str:
        return self.streams[self.locate(entry_id)[0]]

    def split(self, entry_ids: Sequence[str]) -> dict[int, list[str]]:
        """Entry ids grouped by stream index, each as the id within its stream."""
        found: dict[int, list[str]] = {}
        for entry_id in entry_ids:
            index, raw = self.locate(entry_id)
            found.setdefault(index, []).append(raw)
        return found

    def qualify_ids(self, index: int, raw_ids: Sequence[str]) -> list[str]:
        return [f"{raw}{SEPARATOR}{index}" for raw in raw_ids] if self._sharded else list(raw_ids)

    # -- the ConsumerGroup commands, per stream ----------------------------------------------------

    async def ensure_group(self) -> None:
        for part in self._parts:
            await part.ensure_group()

    async def read_new(self, count: int, block_ms: int | None) -> list[StreamEntry]:
        if not self._sharded:
            return await super().read_new(count, block_ms)
        if not self._surplus:
            per_stream = -(-count // len(self.streams))
            read = self._read_cluster if self._cluster else self._read_together
            self._keep(await read(per_stream, block_ms))
        return [self._surplus.popleft() for _ in range(min(count, len(self._surplus)))]

    async def _read_together(self, per_stream: int, block_ms: int | None) -> dict[int, list[StreamEntry]]:
        """One Redis: a single XREADGROUP over every stream, starting at a different one each time."""
        self._rotation = (self._rotation + 1) % len(self.streams)
        order = self.streams[self._rotation:] + self.streams[:self._rotation]
        reply: Any = await self.client.xreadgroup(self.group, self.consumer, dict.fromkeys(order, ">"),
                                                  count=per_stream, block=block_ms)
        by_stream: dict[int, list[StreamEntry]] = {}
        for stream, raw in reply or []:
            index = self.streams.index(text(stream))
            by_stream[index] = [self._qualified(index, entry) for entry in parse_entries(raw)]
        return by_stream

    async def _read_cluster(self, per_stream: int, block_ms: int | None) -> dict[int, list[StreamEntry]]:
        """A cluster: one read per shard, each on its own node; blocking reads stay outstanding."""
        if block_ms is None:
            idle = [i for i in range(len(self._parts)) if i not in self._reads]
            replies = await asyncio.gather(*(self._parts[i].read_new(per_stream, None) for i in idle))
            now = {i: [self._qualified(i, e) for e in entries] for i, entries in zip(idle, replies, strict=True)}
            return {**now, **self._collect()}
        for index, part in enumerate(self._parts):
            if index not in self._reads:
                self._reads[index] = asyncio.create_task(part.read_new(per_stream, block_ms),
                                                         name=f"read-{part.stream}")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + block_ms / 1000
        found: dict[int, list[StreamEntry]] = {}
        # A read that timed out empty may finish first while another shard's answer is on its way.
        while self._reads and not any(found.values()):
            remaining = deadline - loop.time()
            done, _ = await asyncio.wait(set(self._reads.values()), timeout=max(0.0, remaining),
                                         return_when=asyncio.FIRST_COMPLETED)
            found.update(self._collect())
            if not done or remaining <= 0:
                break
        return found

    def _collect(self) -> dict[int, list[StreamEntry]]:
        """The answers of the outstanding reads that finished; the first error once all are kept."""
        found: dict[int, list[StreamEntry]] = {}
        error: BaseException | None = None
        for index, task in list(self._reads.items()):
            if not task.done():
                continue
            del self._reads[index]
            if task.cancelled():
                continue
            if task.exception() is not None:
                error = error or task.exception()
                continue
            found[index] = [self._qualified(index, entry) for entry in task.result()]
        if error is not None and not any(found.values()):
            raise error
        return found

    def _keep(self, by_stream: dict[int, list[StreamEntry]]) -> None:
        """Queue what was read, the shards interleaved, so a busy shard cannot crowd out the others."""
        queues = [deque(entries) for _, entries in sorted(by_stream.items()) if entries]
        while queues:
            for queue in list(queues):
                self._surplus.append(queue.popleft())
                if not queue:
                    queues.remove(queue)

    async def autoclaim(self, min_idle_ms: int, cursor: str, count: int) -> ClaimBatch:
        """One shard's pending list a batch at a time, shard after shard; FULL_PASS once all were scanned."""
        if not self._sharded:
            return await super().autoclaim(min_idle_ms, cursor, count)
        index, _, inner = cursor.partition(":") if ":" in cursor else ("0", "", FULL_PASS)
        shard = int(index)
        batch = await self._parts[shard].autoclaim(min_idle_ms, inner, count)
        held = {entry.entry_id for entry in self._surplus}
        entries = [e for e in (self._qualified(shard, entry) for entry in batch.entries) if e.entry_id not in held]
        if batch.cursor != FULL_PASS:
            next_cursor = f"{shard}:{batch.cursor}"
        else:
            next_cursor = f"{shard + 1}:{FULL_PASS}" if shard + 1 < len(self._parts) else FULL_PASS
        return ClaimBatch(entries, next_cursor, self.qualify_ids(shard, batch.deleted))

    async def cancel_reads(self) -> None:
        """Stop the outstanding reads and forget the surplus: their entries stay pending for a reclaim."""
        for task in self._reads.values():
            task.cancel()
        if self._reads:
            await asyncio.wait(set(self._reads.values()), timeout=1.0)
        self._reads.clear()
        self._surplus.clear()

    async def ack(self, *entry_ids: str) -> None:
        if not self._sharded:
            await super().ack(*entry_ids)
            return
        async with self.client.pipeline(transaction=False) as pipe:
            for index, raw_ids in self.split(entry_ids).items():
                pipe.xack(self.streams[index], self.group, *raw_ids)
            await pipe.execute()

    async def keep_claimed(self, entry_id: str) -> bool:
        index, raw = self.locate(entry_id)
        return await self._parts[index].keep_claimed(raw)

    async def hand_back(self, idle_ms: int, limit: int) -> list[str]:
        if not self._sharded:
            return await super().hand_back(idle_ms, limit)
        await self.cancel_reads()
        handed: list[str] = []
        for index, part in enumerate(self._parts):
            handed.extend(self.qualify_ids(index, await part.hand_back(idle_ms, limit)))
        return handed
