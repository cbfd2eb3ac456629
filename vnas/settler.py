"""Every way a dispatch entry is settled: a task's outcome, a poison entry, an entry that cannot run.

Outcomes settle in batches (group commit): results, updates and acks of every task that finished while
the previous batch was in flight go to Redis together. A batch waits for the tasks running beside it
only when they are expected to finish within GATHER_S (by the running average of task durations, so
short in-process tasks of a fetched batch settle together and a worker of long scripts waits for
nothing), and never longer than that; whatever finishes during a flush's round trip rides the next. A batch is
one script call per request (keys of that request, plus the dispatch stream for the ack), all in one
pipelined round trip. Per task the order is unchanged: SET NX the result and XADD the update first,
XACK only once both were written; the script is atomic, and a refused write aborts it before the ack,
leaving the entries pending for a retry.

Each settle is retried across Redis outages until the shutdown phase says to give up: an outcome only
once the grace is over (ABANDONING), the others as soon as the worker is stopping.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from vn.v1 import streams_pb2
from vnas.stream import DispatchStream, Entry
from vnas.task import TaskOutcome
from vncommon import console_records, keys
from vncommon.phase import Phase, RedisRetry
from vncommon.rediscluster import spans_slots
from vncommon.state import TaskStatus, task_status
from vncommon.streams import to_fields
from vncommon.timeutil import utc_now_iso

log = logging.getLogger(__name__)

# The longest a settle waits for the tasks running beside it (see the module's docstring).
GATHER_S = 0.002

# One request's share of a batch. KEYS: its updates stream, its dispatch stream shard, its tombstone, then the
# result key of every completed task in order. ARGV: TTL, consumer group ("" when the dispatch shard is in
# another slot, on a cluster: the caller acknowledges after), then per task: entry id, "1" if it has a
# result, the result, the number of update field strings, the fields. Returns 1/0 per task: stored or
# not (SET NX kept an earlier result, or the attempt failed).
# The orchestrator creates the updates stream when it dispatches a request's first group and deletes it
# when the request ends, so the updates go in with NOMKSTREAM and need no EXPIRE of their own: a late
# update after the cleanup (the tombstone is there) is dropped instead of recreating the stream. Only a
# stream missing without a tombstone (an orchestrator that did not create it) is created here, with the
# TTL that bounds it.
_SETTLE_SCRIPT = """
local ttl, group = ARGV[1], ARGV[2]
local i, key = 3, 4
local stored, ids = {}, {}
local missing = false
while i <= #ARGV do
  local reply = 0
  if ARGV[i + 1] == '1' then
    if redis.call('SET', KEYS[key], ARGV[i + 2], 'NX', 'EX', ttl) then reply = 1 end
    key = key + 1
  end
  local count = tonumber(ARGV[i + 3])
  if missing then
  elseif not redis.call('XADD', KEYS[1], 'NOMKSTREAM', '*', unpack(ARGV, i + 4, i + 3 + count)) then
    if redis.call('EXISTS', KEYS[3]) == 0 then
      redis.call('XADD', KEYS[1], '*', unpack(ARGV, i + 4, i + 3 + count))
      redis.call('EXPIRE', KEYS[1], ttl)
    else
      missing = true
    end
  end
  stored[#stored + 1] = reply
  ids[#ids + 1] = ARGV[i]
  i = i + 4 + count
end
if group ~= '' then redis.call('XACK', KEYS[2], group, unpack(ids)) end
return stored
"""


class RedisSettleError(Exception):
    """Redis refused part of a settle (for example OOM); the entry stays un-acknowledged."""


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
        status=task_status(outcome.completed),
        result_key=result_key_of(dispatch) if outcome.completed else "",
        attempt=dispatch.attempt or 1,
        duration_ms=outcome.duration_ms,
        error="" if outcome.completed else outcome.error,
        deliveries=deliveries,
    )


@dataclass(slots=True)
class _Pending:
    entry_id: str
    dispatch: streams_pb2.TaskDispatch
    outcome: TaskOutcome
    deliveries: int
    done: asyncio.Future[bool] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class Settler:
    """`running` says how many tasks run now, `task_seconds` how long one takes on average (None:
    unknown); a batch waits for those expected to finish within GATHER_S."""

    def __init__(self, stream: DispatchStream, result_ttl_s: int, retry: RedisRetry,
                 running: Callable[[], int] = lambda: 0,
                 task_seconds: Callable[[], float | None] = lambda: None) -> None:
        self._stream = stream
        self._ttl = result_ttl_s
        self._retry = retry
        self._running = running
        self._task_seconds = task_seconds
        self._queue: list[_Pending] = []
        self._arrived = asyncio.Event()
        self._attempts_ttl = console_records.TtlMemo(result_ttl_s)
        self._flusher: asyncio.Task[None] | None = None

    async def settle(self, entry: Entry, dispatch: streams_pb2.TaskDispatch, outcome: TaskOutcome) -> bool | None:
        """True if this attempt's result was stored; False if settled without (a failed outcome, or an
        earlier result was kept); None if Redis did not answer before the grace ran out (left pending)."""
        _settled, stored = await self._retry(
            "settle the task", lambda: self._enqueue(entry.entry_id, dispatch, outcome, entry.deliveries),
            gives_up_at=Phase.ABANDONING, fields={"entryId": entry.entry_id})
        return stored

    async def dead_letter(self, entry: Entry, dispatch: streams_pb2.TaskDispatch) -> bool:
        """Record a poison entry with full context, report the attempt failed, then acknowledge it."""
        log.error("dead-lettered a poison task", extra={"fields": {
            "entryId": entry.entry_id, "deliveries": entry.deliveries - 1, "attempt": dispatch.attempt}})
        settled, _ = await self._retry("dead-letter the entry", lambda: self._dead_letter(entry, dispatch),
                                       gives_up_at=Phase.STOPPING, fields={"entryId": entry.entry_id})
        return settled

    async def reject(self, entry: Entry, error: str) -> bool:
        """Acknowledge an entry that cannot become a task (malformed fields), reporting it if possible."""
        log.error("acknowledged an entry that cannot run: %s", error, extra={"fields": {"entryId": entry.entry_id}})
        settled, _ = await self._retry("reject the entry", lambda: self._report_and_ack(entry, error),
                                       gives_up_at=Phase.STOPPING, fields={"entryId": entry.entry_id})
        return settled

    async def skip(self, entry: Entry) -> bool:
        """Acknowledge an entry of a cancelled request without running it: nobody waits for its update."""
        settled, _ = await self._retry("skip the entry", lambda: self._stream.ack(entry.entry_id),
                                       gives_up_at=Phase.STOPPING, fields={"entryId": entry.entry_id})
        return settled

    async def _dead_letter(self, entry: Entry, dispatch: streams_pb2.TaskDispatch) -> None:
        used = entry.deliveries - 1
        deadletters = keys.deadletter_stream(self._stream.stream_of(entry.entry_id))
        error = (f"poison task: delivered {used} times without finishing (each worker that took it died); "
                 f"dead-lettered in {deadletters}")
        record: dict[Any, Any] = {**entry.fields, "entryId": entry.entry_id, "deliveries": used,
                                  "consumer": self._stream.consumer, "deadLetteredAt": utc_now_iso(),
                                  "error": error}
        update: dict[Any, Any] = to_fields(build_update(dispatch, TaskOutcome.failed(error), used))
        updates = updates_stream_of(dispatch)
        async with self._stream.client.pipeline(transaction=False) as pipe:
            pipe.xadd(deadletters, record, maxlen=keys.DEADLETTER_MAXLEN, approximate=True)
            pipe.xadd(updates, update)
            pipe.expire(updates, self._ttl)
            replies = await pipe.execute(raise_on_error=False)
        errors = [reply for reply in replies if isinstance(reply, Exception)]
        if errors:
            raise RedisSettleError(f"redis refused the dead-letter record: {errors[0]}")
        await self._stream.ack(entry.entry_id)

    async def _report_and_ack(self, entry: Entry, error: str) -> None:
        request_id = entry.fields.get("requestId", "")
        if request_id:
            update = streams_pb2.TaskUpdate(request_id=request_id, status=TaskStatus.FAILED, error=error)
            fields: dict[Any, Any] = to_fields(update)
            updates = entry.fields.get("updatesStream", "")
            await self._stream.client.xadd(updates or keys.updates_stream(request_id), fields)
        await self._stream.ack(entry.entry_id)

    # -- batched outcomes --------------------------------------------------------------------------

    async def _enqueue(self, entry_id: str, dispatch: streams_pb2.TaskDispatch, outcome: TaskOutcome,
                       deliveries: int) -> bool:
        pending = _Pending(entry_id, dispatch, outcome, deliveries)
        self._queue.append(pending)
        self._arrived.set()
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_all(), name="vnas-settle")
        return await pending.done

    async def _gather(self) -> None:
        """Wait while tasks run that should finish within GATHER_S, and at most that long."""
        loop = asyncio.get_running_loop()
        until = loop.time() + GATHER_S
        while self._running() and (seconds := self._task_seconds()) is not None and seconds < GATHER_S:
            left = until - loop.time()
            if left <= 0:
                return
            self._arrived.clear()
            try:
                async with asyncio.timeout(left):
                    await self._arrived.wait()
            except TimeoutError:
                return

    async def _flush_all(self) -> None:
        await self._gather()
        while self._queue:
            batch, self._queue = self._queue, []
            try:
                await self._flush(batch)
            except Exception as exc:  # a lost connection: every caller retries its own settle
                for pending in batch:
                    if not pending.done.done():
                        pending.done.set_exception(exc)

    async def _flush(self, batch: list[_Pending]) -> None:
        by_request: dict[str, list[_Pending]] = {}
        for pending in batch:
            by_request.setdefault(updates_stream_of(pending.dispatch), []).append(pending)
        async with self._stream.client.pipeline(transaction=False) as pipe:
            firsts = []
            given: list[str] = []
            for updates, pendings in by_request.items():
                firsts.append(len(pipe))
                given += self._queue_settle(pipe, updates, pendings)
            replies: list[Any] = await pipe.execute(raise_on_error=False)
        if not any(isinstance(reply, Exception) for reply in replies):
            self._attempts_ttl.given(given)
        settled: list[tuple[_Pending, bool]] = []
        # Each request's settle is the first of its commands; its console records follow (best effort).
        for pendings, reply in zip(by_request.values(), [replies[i] for i in firsts], strict=True):
            if isinstance(reply, Exception):
                error = RedisSettleError(f"redis refused the settle: {reply}")
                for pending in pendings:
                    pending.done.set_exception(error)
                continue
            settled += [(pending, bool(pending.outcome.completed and int(stored)))
                        for pending, stored in zip(pendings, reply, strict=True)]
        if not spans_slots(self._stream.client) and settled:
            # A cluster: the dispatch stream is in another slot than the request's keys, so the script did
            # not acknowledge; the ack follows the writes it settled, as SPEC section 9 asks.
            await self._stream.ack(*[pending.entry_id for pending, _ in settled])
        for pending, stored in settled:
            pending.done.set_result(stored)

    def _queue_settle(self, pipe: Any, updates: str, pendings: list[_Pending]) -> list[str]:
        """One script call settling the tasks of one request (its entries are all on one dispatch shard)."""
        acks = spans_slots(self._stream.client)  # a cluster acknowledges after the script (see _flush)
        dispatch = self._stream.stream_of(pendings[0].entry_id) if acks else updates
        request_id = pendings[0].dispatch.request_id
        # The tombstone tells a stream cleaned up from one never created; a stream named otherwise than the
        # request's own is simply created when missing (its own name stands in for the tombstone).
        tombstone = keys.tombstone_key(request_id) if updates == keys.updates_stream(request_id) else updates
        script_keys: list[Any] = [updates, dispatch, tombstone]
        args: list[Any] = [self._ttl, self._stream.group if acks else ""]
        for pending in pendings:
            completed = pending.outcome.completed
            fields = to_fields(build_update(pending.dispatch, pending.outcome, pending.deliveries))
            args += [self._stream.locate(pending.entry_id)[1], "1" if completed else "0",
                     pending.outcome.result_xml if completed else "", 2 * len(fields)]
            for name, value in fields.items():
                args += [name, value]
            if completed:
                script_keys.append(result_key_of(pending.dispatch))
        pipe.eval(_SETTLE_SCRIPT, len(script_keys), *script_keys, *args)
        # What the console shows of each attempt: one write per group of the batch, after the settle (and
        # the hash's TTL when this worker did not give it lately). Returns the hashes given their TTL.
        return console_records.queue_task_attempts(
            pipe, [build_update(p.dispatch, p.outcome, p.deliveries) for p in pendings], self._stream.consumer,
            self._ttl, self._attempts_ttl.needs_ttl)
