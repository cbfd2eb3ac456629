"""Dispatching tasks to workers: task XML and dispatch entries for a whole group in one round trip.

A small task document (VNVS_INLINE_TASK_BYTES) travels in its dispatch entry; a larger one is stored in
its own key, which the entry names. The entry lives in the stream until it is trimmed, the key for the
request's TTL, so inlining small documents costs Redis no extra memory.

Entries are added without MAXLEN: XADD's trim could drop entries still pending in `task-workers`;
the stream is trimmed by `vncommon.streamtrim` (only below what the group still needs) instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from vn.v1 import streams_pb2
from vncommon import keys
from vncommon.aio import in_turns
from vncommon.slotpipe import StepPipeline, after_part, shared_part
from vncommon.state import Priority
from vncommon.streams import to_fields

CHECKPOINT_CHUNK = 2000  # tasks per HSET of the dispatch checkpoint (two arguments each)


class TaskRef(NamedTuple):
    """What a dispatch entry needs to name one task of a running request. Immutable, and a tuple because
    a group makes one per task: 100,000 of them cost a quarter of what frozen dataclasses do."""

    request_id: str
    group_index: int
    group_name: str
    task_id: str
    valuation_name: str
    trace_id: str
    traceparent: str = ""  # the group's span (vncommon.tracing), "" when tracing is off
    payload: str = ""  # the task XML when it is small enough to travel in the entry

    def entry(self, attempt: int, max_deliveries: int) -> streams_pb2.TaskDispatch:
        return streams_pb2.TaskDispatch(
            request_id=self.request_id,
            group_index=self.group_index,
            group_name=self.group_name,
            task_id=self.task_id,
            valuation_name=self.valuation_name,
            payload_key="" if self.payload else keys.task_xml_key(self.request_id, self.group_index, self.task_id),
            payload=self.payload,
            result_key=keys.task_result_key(self.request_id, self.group_index, self.task_id),
            attempt=attempt,
            updates_stream=keys.updates_stream(self.request_id),
            trace_id=self.trace_id,
            max_deliveries=max_deliveries,
            traceparent=self.traceparent or None,  # absent from the entry while tracing is off
        )


class Dispatcher:
    """Adds task documents and dispatch entries to a pipeline, recording each task's dispatched attempt.

    The record (`group_tasks_key`) is the checkpoint a resuming orchestrator reads: a task with a
    recorded attempt is in flight (its entry is in the stream, and a dead worker's entries are
    reclaimed), so only tasks never dispatched are dispatched again.
    """

    def __init__(self, ttl_seconds: int, stream_shards: int = 1, priority: Priority = Priority.NORMAL) -> None:
        self._ttl = ttl_seconds
        self._shards = stream_shards
        self._priority = priority

    async def queue_tasks(self, pipe: StepPipeline, tasks: Sequence[tuple[TaskRef, bytes]],
                          max_deliveries: int) -> None:
        """Every task document, then its first dispatch entry: the whole group in one round trip."""
        if not tasks:
            return
        for ref, xml in tasks:
            if ref.payload:
                continue
            pipe.set(keys.task_xml_key(ref.request_id, ref.group_index, ref.task_id), xml, ex=self._ttl)
        await self.queue_entries(pipe, [(ref, 1, max_deliveries) for ref, _ in tasks])

    async def queue_entries(self, pipe: StepPipeline, refs: Sequence[tuple[TaskRef, int, int]]) -> None:
        """Entries for tasks whose documents are stored: (task, attempt, delivery budget) each, on the
        dispatch stream of their request's priority and shard. A window of hundreds of entries is
        recorded in turns, so the loop serves its timers and I/O in between."""
        ref0 = refs[0][0]
        stream = keys.dispatch_stream(ref0.request_id, self._shards, self._priority)
        shared = shared_part(pipe)
        # On a cluster the checkpoint lands after the entries it records (see vncommon.slotpipe); in parts
        # a step's script can run (a command's arguments are unpacked onto Lua's C stack).
        checkpoint = keys.group_tasks_key(ref0.request_id, ref0.group_index)
        for start in range(0, len(refs), CHECKPOINT_CHUNK):
            after_part(pipe).hset(checkpoint, mapping={ref.task_id: attempt
                                                       for ref, attempt, _ in refs[start:start + CHECKPOINT_CHUNK]})
        async for ref, attempt, budget in in_turns(refs):
            shared.xadd(stream, to_fields(ref.entry(attempt, budget)))
