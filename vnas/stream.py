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
from vncommon.state import REQUEST_HASH, Status, word
from vncommon.streams import from_fields, text
from vncommon.tieredgroup import TieredGroup

# Renews (idle time back to 0) only the entries this consumer still owns: a plain XCLAIM would also
# steal back an entry another worker legitimately reclaimed while this one was unreachable. Returns the
# entries another consumer holds now; one no longer pending at all was acknowledged (its settle is
# landing), so it is not among them.
_KEEP_FRESH_SCRIPT = """
local taken = {}
for i = 3, #ARGV do
  local pending = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)
  if pending[1] then
    if pending[1][2] == ARGV[2] then
      redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')
    else
      taken[#taken + 1] = ARGV[i]
    end
  end
end
return taken
"""


@dataclass(frozen=True, slots=True)
class Entry(StreamEntry):
    """A dispatch entry, with its task XML when it was read along with the batch."""

    payload: bytes | None = None
    prefetched: bool = False  # payload was read with the batch (None then means the key is gone)
    cancelled: bool = False  # its request was cancelled: acknowledged without running


def _payload(reply: Any) -> bytes | None:
    return bytes(reply) if reply is not None else None


def _cancelled(request_ids: Sequence[str], statuses: Sequence[Any]) -> set[str]:
    """Which requests' status words (HGET replies, in order; an error reply is unknown) say cancelled."""
    return {request_id for request_id, status in zip(request_ids, statuses, strict=True)
            if not isinstance(status, Exception) and word(status) == Status.CANCELLED}


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


class DispatchStream(TieredGroup):
    """The dispatch streams (every priority, every shard) as seen by one consumer of group `task-workers`."""

    def __init__(self, client: redis.Redis, consumer: str,
                 tiers: Sequence[Sequence[str]] = ((keys.DISPATCH_STREAM,),)) -> None:
        super().__init__(client, tiers, keys.DISPATCH_GROUP, consumer)
        self._keep_fresh = client.register_script(_KEEP_FRESH_SCRIPT)

    async def read_payload(self, key: str) -> bytes | None:
        value: Any = await self.client.get(key)
        return _payload(value)

    async def read_payloads(self, entries: list[StreamEntry]) -> list[Entry]:
        """Attach every entry's task XML in one pipelined round trip (None: the key does not exist): one
        MGET per request, whose keys share its hash slot; and mark the entries of cancelled requests, with
        one status read per request of the batch, not per task."""
        by_request: dict[str, list[int]] = {}
        payloads: dict[int, Any] = {}
        requests = sorted({text(entry.fields.get("requestId", "")) for entry in entries} - {""})
        for index, entry in enumerate(entries):
            inline = entry.fields.get("payload", "")
            if inline:  # the document travels in the entry: nothing to read
                payloads[index] = inline.encode()
                continue
            by_request.setdefault(entry.fields.get("requestId", ""), []).append(index)
        async with self.client.pipeline(transaction=False) as pipe:
            for indexes in by_request.values():
                pipe.mget([entries[i].fields.get("payloadKey", "") for i in indexes])
            for request_id in requests:
                pipe.hget(keys.request_state_key(request_id), REQUEST_HASH.status)
            replies: list[Any] = await pipe.execute(raise_on_error=False)
        fetched, statuses = replies[:len(by_request)], replies[len(by_request):]
        for indexes, reply in zip(by_request.values(), fetched, strict=True):
            for position, index in enumerate(indexes):
                payloads[index] = reply if isinstance(reply, Exception) else reply[position]
        cancelled = _cancelled(requests, statuses)
        # MGET answers nil for a missing key and for one of another type alike: such a task reads its own
        # key, to fail with the right reason (payload missing, or WRONGTYPE).
        return [Entry(entry.entry_id, entry.fields, entry.deliveries,
                      cancelled=entry.fields.get("requestId", "") in cancelled)
                if payloads[index] is None or isinstance(payloads[index], Exception)
                else Entry(entry.entry_id, entry.fields, entry.deliveries, bytes(payloads[index]), prefetched=True,
                           cancelled=entry.fields.get("requestId", "") in cancelled)
                for index, entry in enumerate(entries)]

    async def cancelled_requests(self, request_ids: list[str]) -> set[str]:
        """Which of these requests were cancelled."""
        async with self.client.pipeline(transaction=False) as pipe:
            for request_id in request_ids:
                pipe.hget(keys.request_state_key(request_id), REQUEST_HASH.status)
            statuses: list[Any] = await pipe.execute()
        return _cancelled(request_ids, statuses)

    async def keep_fresh(self, entry_ids: list[str]) -> set[str]:
        """Reset the idle time of entries this consumer still owns; returns those another consumer
        reclaimed (an entry acknowledged meanwhile is neither)."""
        if not entry_ids:
            return set()
        taken: set[str] = set()
        for index, raw_ids in self.split(entry_ids).items():  # the script touches one stream (one slot)
            lost = await self._keep_fresh(keys=[self.streams[index]], args=[self.group, self.consumer, *raw_ids])
            taken.update(self.qualify_ids(index, [text(item) for item in lost]))
        return taken
