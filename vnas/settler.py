"""Settling finished tasks in batches (group commit): results, updates and acks of every task that
finished while the previous batch was in flight go to Redis together.

No task waits for a timer: the first settle starts a flush at once, and whatever finishes during that
round trip rides the next one. Per task the order is unchanged: SET NX the result and XADD the update
first, XACK only once both were written (a refused write leaves the entry pending for a retry).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from vn.v1 import streams_pb2
from vnas.dispatch import DispatchStream, RedisSettleError, build_update, result_key_of, updates_stream_of
from vnas.executor import TaskOutcome
from vncommon.streams import to_fields


@dataclass(slots=True)
class _Pending:
    entry_id: str
    dispatch: streams_pb2.TaskDispatch
    outcome: TaskOutcome
    deliveries: int
    done: asyncio.Future[bool] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class Settler:
    def __init__(self, stream: DispatchStream, result_ttl_s: int) -> None:
        self._stream = stream
        self._ttl = result_ttl_s
        self._queue: list[_Pending] = []
        self._flusher: asyncio.Task[None] | None = None

    async def settle(self, entry_id: str, dispatch: streams_pb2.TaskDispatch, outcome: TaskOutcome,
                     deliveries: int) -> bool:
        """True if this attempt's result was stored (False: an earlier result was kept, or it failed)."""
        pending = _Pending(entry_id, dispatch, outcome, deliveries)
        self._queue.append(pending)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_all(), name="vnas-settle")
        return await pending.done

    async def _flush_all(self) -> None:
        while self._queue:
            batch, self._queue = self._queue, []
            try:
                await self._flush(batch)
            except Exception as exc:  # a lost connection: every caller retries its own settle
                for pending in batch:
                    if not pending.done.done():
                        pending.done.set_exception(exc)

    async def _flush(self, batch: list[_Pending]) -> None:
        # MULTI/EXEC: the orchestrator blocked on an updates stream wakes once to the whole batch.
        async with self._stream.client.pipeline(transaction=True) as pipe:
            sizes = [self._queue_writes(pipe, pending) for pending in batch]
            replies: list[Any] = await pipe.execute(raise_on_error=False)
        written: list[tuple[_Pending, bool]] = []
        start = 0
        for pending, size in zip(batch, sizes, strict=True):
            own = replies[start:start + size]
            start += size
            errors = [reply for reply in own if isinstance(reply, Exception)]
            if errors:
                pending.done.set_exception(RedisSettleError(f"redis refused the settle: {errors[0]}"))
            else:
                written.append((pending, bool(pending.outcome.completed and own[0])))
        if written:
            await self._stream.ack_many([pending.entry_id for pending, _ in written])
        for pending, stored in written:
            pending.done.set_result(stored)

    def _queue_writes(self, pipe: Any, pending: _Pending) -> int:
        """The writes of one task; returns how many commands it added."""
        update: dict[Any, Any] = to_fields(build_update(pending.dispatch, pending.outcome, pending.deliveries))
        updates = updates_stream_of(pending.dispatch)
        count = 2
        if pending.outcome.completed:
            pipe.set(result_key_of(pending.dispatch), pending.outcome.result_xml, nx=True, ex=self._ttl)
            count += 1
        pipe.xadd(updates, update)
        # Bounds a stream recreated by a late update after its request ended and was cleaned up.
        pipe.expire(updates, self._ttl)
        return count
