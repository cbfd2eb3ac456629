"""The Redis side of the worker: reading the dispatch stream, settling outcomes, keeping entries fresh.

Every command against `stream:task:dispatch` and the per-request update streams lives here, so the
loop in `vnas.consumer` only decides *when* to call them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import redis.asyncio as redis
from redis.exceptions import ResponseError

from vn.v1 import streams_pb2
from vnas.executor import TaskContext, TaskOutcome
from vncommon import keys
from vncommon.streams import from_fields, text, to_fields
from vncommon.timeutil import utc_now_iso

log = logging.getLogger(__name__)

STATUS_COMPLETED = "completed"
STATUS_FAILED = "failed"

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
class Entry:
    """One dispatch stream entry as delivered to this consumer."""

    entry_id: str
    fields: dict[str, str]
    deliveries: int = 1
    payload: bytes | None = None
    prefetched: bool = False  # payload was read with the batch (None then means the key is gone)


@dataclass(frozen=True, slots=True)
class ClaimBatch:
    """What one XAUTOCLAIM call returned and where the next scan starts."""

    entries: list[Entry]
    cursor: str
    deleted: list[str]


class RedisSettleError(Exception):
    """Redis refused part of a settle (for example OOM); the entry stays un-acknowledged."""



def _entries(raw: list[Any]) -> list[Entry]:
    found: list[Entry] = []
    for entry_id, fields in raw:
        if entry_id is None or fields is None:
            continue
        found.append(Entry(text(entry_id), {text(k): text(v) for k, v in fields.items()}))
    return found


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


def parse_dispatch(entry: Entry) -> streams_pb2.TaskDispatch:
    """The entry's TaskDispatch; ValueError if a numeric field is not a number."""
    fields: dict[bytes | str, bytes | str] = {key: value for key, value in entry.fields.items()}
    return from_fields(streams_pb2.TaskDispatch, fields)


def result_key_of(dispatch: streams_pb2.TaskDispatch) -> str:
    return dispatch.result_key or keys.task_result_key(dispatch.request_id, dispatch.group_index, dispatch.task_id)


def updates_stream_of(dispatch: streams_pb2.TaskDispatch) -> str:
    return dispatch.updates_stream or keys.updates_stream(dispatch.request_id)


def build_update(dispatch: streams_pb2.TaskDispatch, outcome: TaskOutcome, deliveries: int = 1
                 ) -> streams_pb2.TaskUpdate:
    """The update for the orchestrator; resultKey is set only when a result was stored for this task."""
    return streams_pb2.TaskUpdate(
        request_id=dispatch.request_id,
        group_index=dispatch.group_index,
        task_id=dispatch.task_id,
        status=STATUS_COMPLETED if outcome.completed else STATUS_FAILED,
        result_key=result_key_of(dispatch) if outcome.completed else "",
        attempt=dispatch.attempt or 1,
        duration_ms=outcome.duration_ms,
        error="" if outcome.completed else outcome.error,
        deliveries=deliveries,
    )


def is_poison(entry: Entry, dispatch: streams_pb2.TaskDispatch) -> bool:
    """Delivered more often than its budget allows: every worker that took it died before settling."""
    return bool(dispatch.max_deliveries) and entry.deliveries > dispatch.max_deliveries


class DispatchStream:
    """The dispatch stream as seen by one consumer of group `task-workers`."""

    def __init__(self, client: redis.Redis, consumer: str, result_ttl_s: int) -> None:
        self.client = client
        self.consumer = consumer
        self.stream = keys.DISPATCH_STREAM
        self.group = keys.DISPATCH_GROUP
        self._result_ttl_s = result_ttl_s
        self._keep_fresh = client.register_script(_KEEP_FRESH_SCRIPT)

    async def ensure_group(self) -> None:
        """Create the group (and the stream) from the first entry; an existing group is fine."""
        try:
            await self.client.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def autoclaim(self, min_idle_ms: int, cursor: str, count: int) -> ClaimBatch:
        """Take over entries other (presumably dead) consumers left idle for at least `min_idle_ms`."""
        reply: Any = await self.client.xautoclaim(self.stream, self.group, self.consumer, min_idle_ms,
                                             start_id=cursor, count=count)
        deleted = [text(item) for item in reply[2]] if len(reply) > 2 else []
        return ClaimBatch(_entries(reply[1]), text(reply[0]), deleted)

    async def read_new(self, count: int, block_ms: int | None) -> list[Entry]:
        """New entries for this consumer; `block_ms=None` returns at once."""
        reply: Any = await self.client.xreadgroup(self.group, self.consumer, {self.stream: ">"},
                                             count=count, block=block_ms)
        entries: list[Entry] = []
        for _stream, raw in reply or []:
            entries.extend(_entries(raw))
        return entries

    async def read_payload(self, key: str) -> bytes | None:
        value: Any = await self.client.get(key)
        return bytes(value) if value is not None else None

    async def with_deliveries(self, entries: list[Entry]) -> list[Entry]:
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
            counted.append(Entry(entry.entry_id, entry.fields, deliveries))
        return counted

    async def dead_letter(self, entry: Entry, dispatch: streams_pb2.TaskDispatch) -> None:
        """Record a poison entry with full context, report the attempt failed, then acknowledge it."""
        used = entry.deliveries - 1
        error = (f"poison task: delivered {used} times without finishing (each worker that took it died); "
                 f"dead-lettered in {keys.DEADLETTER_STREAM}")
        record: dict[Any, Any] = {**entry.fields, "entryId": entry.entry_id, "deliveries": used,
                                  "consumer": self.consumer, "deadLetteredAt": utc_now_iso(), "error": error}
        update: dict[Any, Any] = to_fields(build_update(dispatch, TaskOutcome.failed(error), used))
        updates = updates_stream_of(dispatch)
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.xadd(keys.DEADLETTER_STREAM, record, maxlen=keys.DEADLETTER_MAXLEN, approximate=True)
            pipe.xadd(updates, update)
            pipe.expire(updates, self._result_ttl_s)
            replies = await pipe.execute(raise_on_error=False)
        errors = [reply for reply in replies if isinstance(reply, Exception)]
        if errors:
            raise RedisSettleError(f"redis refused the dead-letter record: {errors[0]}")
        await self.ack(entry.entry_id)

    async def ack(self, entry_id: str) -> None:
        await self.client.xack(self.stream, self.group, entry_id)

    async def ack_many(self, entry_ids: list[str]) -> None:
        await self.client.xack(self.stream, self.group, *entry_ids)

    async def read_payloads(self, entries: list[Entry]) -> list[Entry]:
        """Attach every entry's task XML in one pipelined round trip (None: the key does not exist)."""
        async with self.client.pipeline(transaction=False) as pipe:
            for entry in entries:
                pipe.get(entry.fields.get("payloadKey", ""))
            replies: list[Any] = await pipe.execute(raise_on_error=False)
        return [entry if isinstance(reply, Exception)  # e.g. WRONGTYPE: the task reads it alone and fails
                else Entry(entry.entry_id, entry.fields, entry.deliveries, _payload(reply), prefetched=True)
                for entry, reply in zip(entries, replies, strict=True)]

    async def report_and_ack(self, entry_id: str, request_id: str, updates: str, error: str) -> None:
        """Settle an entry that could not become a task (malformed fields): failed update if possible."""
        if request_id:
            update = streams_pb2.TaskUpdate(request_id=request_id, status=STATUS_FAILED, error=error)
            fields: dict[Any, Any] = to_fields(update)
            await self.client.xadd(updates or keys.updates_stream(request_id), fields)
        await self.ack(entry_id)

    async def keep_fresh(self, entry_ids: list[str]) -> set[str]:
        """Reset the idle time of entries this consumer still owns; returns those it still owns."""
        if not entry_ids:
            return set()
        owned = await self._keep_fresh(keys=[self.stream], args=[self.group, self.consumer, *entry_ids])
        return {text(item) for item in owned}

    async def hand_back(self, idle_ms: int, limit: int) -> list[Any]:
        """Mark this consumer's remaining entries idle so live workers reclaim them at once."""
        pending: Any = await self.client.xpending_range(self.stream, self.group, "-", "+", limit,
                                                   consumername=self.consumer)
        ids: list[Any] = [text(item["message_id"]) for item in pending]
        if ids:
            await self.client.xclaim(self.stream, self.group, self.consumer, 0, ids, idle=idle_ms, justid=True)
        return ids
