"""The dispatch stream as one task worker sees it: its consumer group, the task documents, keep-fresh.

Reading, claiming, acknowledging and handing back are the shared consumer group's
(`vncommon.consumergroup`); this module adds what only a task worker does with the stream: reading
each entry's task XML and renewing the entries it runs. Settling lives in `vnas.settler`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as redis

from vn.v1 import streams_pb2
from vnas.task import TaskContext
from vncommon import keys
from vncommon.consumergroup import StreamEntry
from vncommon.shardedgroup import ShardedGroup
from vncommon.streams import from_fields, text

# Renews (idle time back to 0) only the entries this consumer still owns: a plain XCLAIM would also
# steal back an entry another worker legitimately reclaimed while this one was unreachable.
_KEEP_FRESH_SCRIPT = """
local owned = {}
for i = 3, #ARGV do
  local pending = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)
  if pending[1] and pending[1][2] == ARGV[2] then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')
    owned[#owned + 1] = ARGV[i]
  end
end
return owned
"""


@dataclass(frozen=True, slots=True)
class Entry(StreamEntry):
    """A dispatch entry, with its task XML when it was read along with the batch."""

    payload: bytes | None = None
    prefetched: bool = False  # payload was read with the batch (None then means the key is gone)


def _payload(reply: Any) -> bytes | None:
    return bytes(reply) if reply is not None else None


def task_context(dispatch: streams_pb2.TaskDispatch) -> TaskContext:
    return TaskContext(
        request_id=dispatch.request_id,
        group_index=dispatch.group_index,
        task_id=dispatch.task_id,
        attempt=dispatch.attempt or 1,
        valuation_name=dispatch.valuation_name,
        trace_id=dispatch.trace_id,
    )


def parse_dispatch(entry: StreamEntry) -> streams_pb2.TaskDispatch:
    """The entry's TaskDispatch; ValueError if a numeric field is not a number."""
    fields: dict[bytes | str, bytes | str] = {key: value for key, value in entry.fields.items()}
    return from_fields(streams_pb2.TaskDispatch, fields)


def is_poison(entry: StreamEntry, dispatch: streams_pb2.TaskDispatch) -> bool:
    """Delivered more often than its budget allows: every worker that took it died before settling."""
    return bool(dispatch.max_deliveries) and entry.deliveries > dispatch.max_deliveries


class DispatchStream(ShardedGroup):
    """The dispatch stream (every shard of it) as seen by one consumer of group `task-workers`."""

    def __init__(self, client: redis.Redis, consumer: str, streams: Sequence[str] = (keys.DISPATCH_STREAM,)) -> None:
        super().__init__(client, streams, keys.DISPATCH_GROUP, consumer)
        self._keep_fresh = client.register_script(_KEEP_FRESH_SCRIPT)

    async def read_payload(self, key: str) -> bytes | None:
        value: Any = await self.client.get(key)
        return _payload(value)

    async def read_payloads(self, entries: list[StreamEntry]) -> list[Entry]:
        """Attach every entry's task XML in one pipelined round trip (None: the key does not exist)."""
        async with self.client.pipeline(transaction=False) as pipe:
            for entry in entries:
                pipe.get(entry.fields.get("payloadKey", ""))
            replies: list[Any] = await pipe.execute(raise_on_error=False)
        return [Entry(entry.entry_id, entry.fields, entry.deliveries)
                if isinstance(reply, Exception)  # e.g. WRONGTYPE: the task reads it alone and fails
                else Entry(entry.entry_id, entry.fields, entry.deliveries, _payload(reply), prefetched=True)
                for entry, reply in zip(entries, replies, strict=True)]

    async def keep_fresh(self, entry_ids: list[str]) -> set[str]:
        """Reset the idle time of entries this consumer still owns; returns those it still owns."""
        if not entry_ids:
            return set()
        owned: set[str] = set()
        for index, raw_ids in self.split(entry_ids).items():  # the script touches one stream (one slot)
            kept = await self._keep_fresh(keys=[self.streams[index]], args=[self.group, self.consumer, *raw_ids])
            owned.update(self.qualify_ids(index, [text(item) for item in kept]))
        return owned
