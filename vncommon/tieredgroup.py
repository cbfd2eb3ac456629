"""One consumer of one group over tiers of streams (the dispatch streams of each priority), highest first.

A fetch round serves the tiers in a weighted order. Most rounds read the highest tier first and fill
what is left of the batch from the tiers below it; a fixed share of rounds starts with a lower tier, so
lower priorities keep advancing under a steady stream of higher work. With three tiers, in every 16
rounds tier 1 (`normal`) leads 3 and tier 2 (`batch`) leads 1 (`lead_tier`): whenever a tier has work
waiting, at least that share of each worker's fetch rounds serves it first.

- Work waiting (the last read filled its batch): the tiers are read at once, in the round's order, up
  to the batch size: on one Redis one script call (its reads run back to back in Redis, so the batch is
  exact); on a cluster one script call per shard, in parallel (the tiers of a shard share its slot, see
  `vncommon.keys`; tiers that do not are refused), the batch split between the shards.
- Nothing waiting: one blocking read over every stream, as `ShardedGroup` does; whatever arrives is
  handed out in the round's order. A blocking read over several streams can return more than the batch
  (at most a batch per stream); the surplus is handed out first on the next read, as there.
Within a tier, the shards are read fairly (the shard read first rotates).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence
from typing import Any

import redis.asyncio as redis
from redis.crc import key_slot

from vncommon.consumergroup import StreamEntry
from vncommon.shardedgroup import ShardedGroup
from vncommon.streams import text

# Tier t > 0 leads the rounds r with r % SHARE_BASE**t == SHARE_BASE**t - 1 (the lowest such tier wins).
SHARE_BASE = 4

# XREADGROUP on each stream in KEYS order until ARGV[3] entries were read; the replies as XREAD gives them.
_READ_IN_ORDER = """
local out = {}
local left = tonumber(ARGV[3])
for i = 1, #KEYS do
  if left <= 0 then break end
  local reply = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', left, 'STREAMS', KEYS[i], '>')
  if reply then
    out[#out + 1] = reply[1]
    left = left - #reply[1][2]
  end
end
return out
"""


def lead_tier(round_number: int, tiers: int) -> int:
    """The tier read first in this fetch round."""
    for tier in range(tiers - 1, 0, -1):
        period = SHARE_BASE ** tier
        if round_number % period == period - 1:
            return tier
    return 0


def tier_order(round_number: int, tiers: int) -> list[int]:
    """The tiers in the order this round reads them: its lead, then the others highest first."""
    lead = lead_tier(round_number, tiers)
    return [lead, *(tier for tier in range(tiers) if tier != lead)]


def _script_entries(raw: list[Any]) -> list[tuple[str, dict[str, str]]]:
    """The entries of one stream in a script's reply (fields as a flat list)."""
    found = []
    for entry_id, fields in raw:
        flat = [text(item) for item in fields]
        found.append((text(entry_id), dict(zip(flat[::2], flat[1::2], strict=True))))
    return found


class TieredGroup(ShardedGroup):
    """`consumer` in group `group` of every stream of `tiers` (lists of streams, highest tier first)."""

    def __init__(self, client: redis.Redis, tiers: Sequence[Sequence[str]], group: str, consumer: str) -> None:
        super().__init__(client, [stream for tier in tiers for stream in tier], group, consumer)
        self._tiers: list[list[int]] = []  # the indexes in `self.streams` of each tier's streams
        start = 0
        for tier in tiers:
            self._tiers.append(list(range(start, start + len(tier))))
            start += len(tier)
        self._tier_by_index = [tier for tier, indexes in enumerate(self._tiers) for _ in indexes]
        self._tiered = len(self._tiers) > 1
        self._round = 0
        self._waiting = True  # unknown at start: look in tier order first
        self._read_in_order = client.register_script(_READ_IN_ORDER)
        # On a cluster one script reads one shard's tiers, so they must share its slot (vncommon.keys names
        # them so): the stream indexes of each shard, in tier order.
        cluster_tiers = self._cluster and self._tiered
        self._by_shard = [list(indexes) for indexes in zip(*self._tiers, strict=True)] if cluster_tiers else []
        if any(len({key_slot(self.streams[index].encode()) for index in shard}) > 1
                                 for shard in self._by_shard):
            raise ValueError("on a cluster the tiers of each shard must share one hash slot")

    def tier_of(self, entry_id: str) -> int:
        return self._tier_by_index[self.locate(entry_id)[0]]

    async def read_new(self, count: int, block_ms: int | None) -> list[StreamEntry]:
        if not self._tiered:
            return await super().read_new(count, block_ms)
        if not self._surplus:
            order = tier_order(self._round, len(self._tiers))
            self._round += 1
            found: dict[int, list[StreamEntry]] = {}
            if self._waiting:
                found = await self._read_now(order, count)
            if not any(found.values()):
                per_stream = -(-count // max(len(tier) for tier in self._tiers))
                read = self._read_cluster if self._cluster else self._read_together
                found = await read(per_stream, block_ms)
                self._waiting = any(len(entries) >= per_stream for entries in found.values())
            else:
                self._waiting = sum(map(len, found.values())) >= count
            self._keep_tiered(found, order)
        return [self._surplus.popleft() for _ in range(min(count, len(self._surplus)))]

    def _rotated(self, tier: int) -> list[int]:
        indexes = self._tiers[tier]
        start = self._round % len(indexes)
        return indexes[start:] + indexes[:start]

    async def _read_now(self, order: list[int], count: int) -> dict[int, list[StreamEntry]]:
        """Up to `count` entries that are waiting, tier by tier in `order`; returns at once."""
        if not self._cluster:
            return self._parse_script(await self._read_in_order(
                keys=[self.streams[index] for tier in order for index in self._rotated(tier)],
                args=[self.group, self.consumer, count]))
        per_shard = -(-count // len(self._by_shard))
        replies = await asyncio.gather(*(self._read_in_order(
            keys=[self.streams[shard[tier]] for tier in order], args=[self.group, self.consumer, per_shard])
            for shard in self._by_shard))
        return {index: entries for reply in replies for index, entries in self._parse_script(reply).items()}

    def _parse_script(self, reply: Any) -> dict[int, list[StreamEntry]]:
        found: dict[int, list[StreamEntry]] = {}
        for stream, raw in reply or []:
            index = self.streams.index(text(stream))
            found[index] = [self._qualified(index, StreamEntry(entry_id, fields))
                            for entry_id, fields in _script_entries(raw)]
        return found

    def _keep_tiered(self, by_stream: dict[int, list[StreamEntry]], order: list[int]) -> None:
        """Queue what was read in the round's tier order, a tier's shards interleaved."""
        for tier in order:
            queues = [deque(by_stream[index]) for index in self._tiers[tier] if by_stream.get(index)]
            while queues:
                for queue in list(queues):
                    self._surplus.append(queue.popleft())
                    if not queue:
                        queues.remove(queue)
