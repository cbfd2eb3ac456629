"""The worker loop: fetch dispatch entries, execute each task, settle its outcome (SPEC sections 5, 9).

Fetch takes over idle entries of dead consumers (XAUTOCLAIM) and then reads new ones (XREADGROUP)
for as many slots as are free. Execute reads the task XML and runs the executor; a failed task is an
outcome. Settle stores the result, publishes the update and acknowledges last, shielded from
cancellation. A separate task keeps the entries this worker runs fresh so nobody reclaims them while it
is alive. On stop, fetching ends, in-flight tasks get a bounded wait, and whatever is unfinished stays
pending (handed back as idle) for another worker.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import TypeVar

import redis.asyncio as redis
from redis.exceptions import ResponseError

from vn.v1 import streams_pb2
from vnas import metrics
from vnas.dispatch import (
    DispatchStream,
    Entry,
    RedisSettleError,
    is_poison,
    parse_dispatch,
    task_context,
)
from vnas.executor import Executor, TaskContext, TaskOutcome
from vnas.settings import VnasSettings
from vnas.settler import Settler
from vncommon import errortext
from vncommon.backoff import Backoff
from vncommon.logs import log_context
from vncommon.redisconn import REDIS_ERRORS

log = logging.getLogger(__name__)
T = TypeVar("T")

# Renew several times per idle window so one slow round trip never lets an entry look abandoned.
KEEP_FRESH_PER_IDLE = 3
# Settles already sent to Redis get this long to land after the grace period (they are shielded).
SETTLE_DRAIN_S = 2.0
_RETRYABLE = (*REDIS_ERRORS, RedisSettleError)


class Abandoned(Exception):
    """The worker is stopping and Redis does not answer: leave the entry pending for another worker."""


class TaskConsumer:
    """One worker of consumer group `task-workers` running up to VNAS_CONCURRENCY tasks at once."""

    def __init__(self, client: redis.Redis, settings: VnasSettings, executor: Executor) -> None:
        self._settings = settings
        self._executor = executor
        self._stream = DispatchStream(client, settings.consumer_name, settings.common.request_ttl_seconds)
        self._settler = Settler(self._stream, settings.common.request_ttl_seconds)
        self._slots = asyncio.Semaphore(settings.concurrency)
        self._inflight: dict[asyncio.Task[None], str] = {}
        self._settling: set[asyncio.Task[bool]] = set()
        self._stopping = asyncio.Event()
        self._abandon = asyncio.Event()
        self._fetcher: asyncio.Task[None] | None = None
        self._claim_cursor = "0-0"
        self._next_claim_at = 0.0
        self.outcomes: Counter[str] = Counter()

    @property
    def consumer_name(self) -> str:
        return self._stream.consumer

    @property
    def in_flight(self) -> int:
        return len(self._inflight)

    def stop(self) -> None:
        """Stop fetching now (safe to call twice, or before run); `run` then finishes in-flight work."""
        self._stopping.set()
        # Cancelling a blocked read can lose its reply; such entries stay pending and are handed back.
        if self._fetcher is not None and not self._fetcher.done():
            self._fetcher.cancel()

    async def run(self, drain: bool = False) -> None:
        """Work until `stop()`; with `drain`, return once the stream has nothing left for this worker."""
        try:
            await self._retrying("create consumer group", self._stream.ensure_group, give_up_on_stop=True)
        except Abandoned:
            return  # stopped before Redis ever answered: nothing was taken, nothing to hand back
        keep_fresh = asyncio.create_task(self._keep_fresh_loop(), name="vnas-keep-fresh")
        self._fetcher = asyncio.create_task(self._fetch_loop(drain), name="vnas-fetch")
        grace = self._settings.shutdown_grace_s
        try:
            # Either loop ending on an exception stops the worker loudly (keep-fresh never ends alone).
            await asyncio.wait({self._fetcher, keep_fresh}, return_when=asyncio.FIRST_COMPLETED)
            for loop_task in (self._fetcher, keep_fresh):
                if loop_task.done() and not loop_task.cancelled():
                    loop_task.result()
        except asyncio.CancelledError:
            grace = 0.0
            raise
        finally:
            self._stopping.set()
            self._fetcher.cancel()
            await self._finish_inflight(grace)
            keep_fresh.cancel()
            await asyncio.gather(keep_fresh, return_exceptions=True)
            await self._hand_back()

    # -- fetch -----------------------------------------------------------------------------------

    async def _fetch_loop(self, drain: bool) -> None:
        backoff = Backoff()
        while not self._stopping.is_set():
            count = await self._reserve_slots()
            try:
                entries = await self._fetch(count, drain)
            except REDIS_ERRORS as exc:
                self._release_slots(count)
                metrics.REDIS_ERRORS.labels("fetch").inc()
                log.warning("redis unavailable while fetching, backing off", extra={"fields": {"error": str(exc)}})
                await asyncio.sleep(backoff.next())
                continue
            except ResponseError as exc:
                self._release_slots(count)
                await self._recover_fetch(exc, backoff)
                continue
            backoff.reset()
            self._release_slots(count - len(entries))
            for entry in await self._prefetch(entries):
                self._start(entry)
            if drain and not entries:
                if not self._inflight:
                    return
                await asyncio.wait(set(self._inflight), return_when=asyncio.FIRST_COMPLETED)

    async def _prefetch(self, entries: list[Entry]) -> list[Entry]:
        """Read the batch's task documents in one round trip; on a Redis error each task reads its own."""
        if not entries:
            return entries
        try:
            return await self._stream.read_payloads(entries)
        except (*REDIS_ERRORS, ResponseError) as exc:
            log.warning("could not prefetch task documents", extra={"fields": {"error": str(exc)}})
            return entries

    async def _recover_fetch(self, error: ResponseError, backoff: Backoff) -> None:
        """NOGROUP: the stream was deleted, recreate it. Anything else (READONLY during a failover, ...)
        is treated as Redis being unavailable: log, back off, try again; a worker never exits for it."""
        if "NOGROUP" in str(error):
            log.warning("dispatch stream or group vanished, recreating it")
            await self._retrying("recreate consumer group", self._stream.ensure_group, give_up_on_stop=True)
            return
        metrics.REDIS_ERRORS.labels("fetch").inc()
        log.error("redis refused the fetch, backing off", extra={"fields": {"error": str(error)}})
        await asyncio.sleep(backoff.next())

    async def _reserve_slots(self) -> int:
        """Wait for one free slot, then take every other free one: the batch size of the next fetch."""
        await self._slots.acquire()
        count = 1
        while not self._slots.locked():
            await self._slots.acquire()  # a free slot: returns without waiting
            count += 1
        return count

    def _release_slots(self, count: int) -> None:
        for _ in range(count):
            self._slots.release()

    async def _fetch(self, count: int, drain: bool) -> list[Entry]:
        entries = await self._reclaim(count, force=False)
        if entries:
            return entries
        block = None if drain else self._settings.common.default_block_ms
        entries = await self._stream.read_new(count, block)
        if not entries and drain:
            # Before calling the stream drained, look at idle entries whatever the pacing says.
            entries = await self._reclaim(count, force=True)
        return entries

    async def _reclaim(self, count: int, force: bool) -> list[Entry]:
        """XAUTOCLAIM idle entries, scanning the pending list a batch at a time; paced when idle."""
        now = time.monotonic()
        if not force and now < self._next_claim_at:
            return []
        batch = await self._stream.autoclaim(self._settings.claim_idle_ms, self._claim_cursor, count)
        entries = await self._stream.with_deliveries(batch.entries)
        self._claim_cursor = batch.cursor
        if batch.cursor == "0-0" and len(batch.entries) < count:
            # Scanned the whole pending list: look again in a fraction of the idle window.
            self._next_claim_at = now + self._settings.claim_idle_ms / 1000 / KEEP_FRESH_PER_IDLE
        if batch.deleted:
            log.warning("pending entries were trimmed before anyone ran them",
                        extra={"fields": {"entryIds": batch.deleted}})
        if entries:
            metrics.TASKS_RECLAIMED.inc(len(entries))
            log.info("reclaimed idle entries", extra={"fields": {"count": len(entries)}})
        return entries

    def _start(self, entry: Entry) -> None:
        task = asyncio.create_task(self._handle(entry), name=f"vnas-task-{entry.entry_id}")
        self._inflight[task] = entry.entry_id
        metrics.TASKS_IN_FLIGHT.inc()
        task.add_done_callback(self._reap)

    def _reap(self, task: asyncio.Task[None]) -> None:
        """A task ended: free its slot and make sure an unexpected error is seen."""
        entry_id = self._inflight.pop(task, "")
        self._slots.release()
        metrics.TASKS_IN_FLIGHT.dec()
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            self.outcomes["crashed"] += 1
            log.error("task handler crashed; its entry stays pending", exc_info=error,
                      extra={"fields": {"entryId": entry_id}})

    # -- execute and settle ----------------------------------------------------------------------

    async def _handle(self, entry: Entry) -> None:
        try:
            dispatch = parse_dispatch(entry)
        except ValueError as exc:
            await self._reject(entry, f"malformed dispatch entry: {exc}")
            return
        if not dispatch.request_id or not dispatch.payload_key:
            await self._reject(entry, "dispatch entry lacks requestId or payloadKey")
            return
        ctx = task_context(dispatch)
        with log_context(requestId=ctx.request_id, groupIndex=ctx.group_index, taskId=ctx.task_id,
                         traceId=ctx.trace_id or None):
            if is_poison(entry, dispatch):
                await self._dead_letter(entry, dispatch)
                return
            try:
                outcome = await self._execute_safely(ctx, dispatch, entry)
                stored = await self._settle(entry, dispatch, outcome)
            except Abandoned as exc:
                log.warning("left the entry pending: %s", exc, extra={"fields": {"entryId": entry.entry_id}})
                return
            self._record(ctx, entry.entry_id, outcome, stored)

    async def _execute_safely(self, ctx: TaskContext, dispatch: streams_pb2.TaskDispatch, entry: Entry
                              ) -> TaskOutcome:
        """Execute; a bug or a refused read becomes a failed outcome, so the entry cannot turn into a
        poison message that every worker reclaims and crashes on in turn."""
        try:
            return await self._execute(ctx, dispatch, entry)
        except (Abandoned, asyncio.CancelledError):
            raise
        except ResponseError as exc:
            return TaskOutcome.failed(f"cannot read the task XML from {dispatch.payload_key}: {exc}")
        except Exception as exc:
            log.exception("worker error while executing a task")
            return TaskOutcome.failed(f"worker error: {type(exc).__name__}: {exc}")

    async def _execute(self, ctx: TaskContext, dispatch: streams_pb2.TaskDispatch, entry: Entry) -> TaskOutcome:
        key = dispatch.payload_key
        payload = entry.payload
        if not entry.prefetched:
            payload = await self._retrying("read the task XML", lambda: self._stream.read_payload(key),
                                           give_up_on_stop=True)
        if payload is None:
            # The request was purged (TTL) or never stored: retrying would fail forever.
            return TaskOutcome.failed(f"payload missing: task XML key {key} does not exist (expired or purged)")
        return await self._executor.run(ctx, payload)

    async def _settle(self, entry: Entry, dispatch: streams_pb2.TaskDispatch, outcome: TaskOutcome) -> bool:
        """Shielded: once the outcome exists, cancelling the handler must not cut the settle in half."""
        settle = asyncio.ensure_future(self._retrying(
            "settle the task", lambda: self._settler.settle(entry.entry_id, dispatch, outcome, entry.deliveries),
            give_up_on_stop=False))
        self._settling.add(settle)
        settle.add_done_callback(self._settling.discard)
        return await asyncio.shield(settle)

    async def _dead_letter(self, entry: Entry, dispatch: streams_pb2.TaskDispatch) -> None:
        log.error("dead-lettered a poison task", extra={"fields": {
            "entryId": entry.entry_id, "deliveries": entry.deliveries - 1, "attempt": dispatch.attempt}})
        await self._retrying("dead-letter the entry", lambda: self._stream.dead_letter(entry, dispatch),
                             give_up_on_stop=True)
        self.outcomes["dead_lettered"] += 1

    async def _reject(self, entry: Entry, error: str) -> None:
        log.error("acknowledged an entry that cannot run: %s", error, extra={"fields": {"entryId": entry.entry_id}})
        request_id = entry.fields.get("requestId", "")
        updates = entry.fields.get("updatesStream", "")
        await self._retrying("reject the entry",
                             lambda: self._stream.report_and_ack(entry.entry_id, request_id, updates, error),
                             give_up_on_stop=True)
        self.outcomes["rejected"] += 1

    def _record(self, ctx: TaskContext, entry_id: str, outcome: TaskOutcome, stored: bool) -> None:
        status = "completed" if outcome.completed else "failed"
        self.outcomes[status] += 1
        metrics.observe_outcome(outcome.completed, outcome.duration_ms)
        fields: dict[str, object] = {"status": status, "attempt": ctx.attempt, "durationMs": outcome.duration_ms,
                                     "entryId": entry_id}
        if outcome.completed:
            fields["resultStored"] = stored  # False: an earlier attempt's result was kept (SET NX)
            log.info("task completed", extra={"fields": fields})
        else:
            # The error's first line only: what follows quotes the script's stderr and output (DEBUG).
            fields["error"] = errortext.summary(outcome.error)
            log.info("task failed", extra={"fields": fields})
            log.debug("task failed", extra={"fields": {"entryId": entry_id, "error": outcome.error}})

    async def _retrying(self, what: str, operation: Callable[[], Awaitable[T]], give_up_on_stop: bool) -> T:
        """Retry `operation` across Redis outages; give up (Abandoned) once stopping, or past the grace."""
        backoff = Backoff()
        while True:
            try:
                return await operation()
            except _RETRYABLE as exc:
                if self._abandon.is_set() or (give_up_on_stop and self._stopping.is_set()):
                    raise Abandoned(f"could not {what}: {exc}") from exc
                metrics.REDIS_ERRORS.labels(what).inc()
                log.warning("redis error, retrying", extra={"fields": {"operation": what, "error": str(exc)}})
                await asyncio.sleep(backoff.next())

    # -- keep fresh and shutdown -----------------------------------------------------------------

    async def _keep_fresh_loop(self) -> None:
        interval = self._settings.claim_idle_ms / 1000 / KEEP_FRESH_PER_IDLE
        warned: set[str] = set()
        while True:
            await asyncio.sleep(interval)
            running = list(self._inflight.values())
            try:
                owned = await self._stream.keep_fresh(running)
            except (*REDIS_ERRORS, ResponseError) as exc:
                metrics.REDIS_ERRORS.labels("keep fresh").inc()
                log.warning("could not keep running entries fresh", extra={"fields": {"error": str(exc)}})
                continue
            still_running = set(self._inflight.values())
            lost = [entry_id for entry_id in running if entry_id not in owned and entry_id in still_running]
            for entry_id in lost:
                if entry_id not in warned:
                    warned.add(entry_id)
                    log.warning("another worker reclaimed an entry this worker still runs",
                                extra={"fields": {"entryId": entry_id}})
            warned &= still_running

    async def _finish_inflight(self, grace_s: float) -> None:
        """Give running tasks `grace_s` to finish; cancel the rest (their scripts are killed)."""
        if self._inflight:
            log.info("waiting for in-flight tasks", extra={"fields": {"count": len(self._inflight),
                                                                       "graceS": grace_s}})
            _done, pending = await asyncio.wait(set(self._inflight), timeout=grace_s)
            if pending:
                log.warning("grace period over; leaving unfinished entries pending",
                            extra={"fields": {"count": len(pending)}})
                self._abandon.set()
                for task in pending:
                    task.cancel()
                await asyncio.wait(pending, timeout=SETTLE_DRAIN_S)
        self._abandon.set()
        if self._settling:
            await asyncio.wait(set(self._settling), timeout=SETTLE_DRAIN_S)

    async def _hand_back(self) -> None:
        """Make this worker's unfinished entries look idle so live workers reclaim them without waiting."""
        limit = self._settings.concurrency * 4 + 100
        try:
            ids = await self._stream.hand_back(self._settings.claim_idle_ms, limit)
        except (*REDIS_ERRORS, ResponseError) as exc:
            log.warning("could not hand back pending entries", extra={"fields": {"error": str(exc)}})
            return
        if ids:
            log.info("handed back unfinished entries", extra={"fields": {"count": len(ids)}})
