"""The task worker: fetch dispatch entries, execute each task, settle its outcome (SPEC sections 5, 9).

Fetch (the shared `vncommon.consumer` loop) takes over idle entries of dead consumers and reads new
ones for as many slots as are free plus those that would start soon (`vnas.prefetch`: short tasks
are fetched in batches and queue locally), with each batch's task documents read in one round trip. Execute
runs the executor; a failed task is an outcome. Settle (`vnas.settler`) stores the result, publishes
the update and acknowledges last, shielded from cancellation. A separate loop keeps the entries this
worker runs fresh so nobody reclaims them while it is alive. Stopping moves through one shutdown
phase: fetching ends, in-flight tasks get the grace, the unfinished are cancelled and stay pending, and
whatever this worker still holds is handed back as idle for another worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import redis.asyncio as redis
from redis.exceptions import ResponseError

from vn.v1 import streams_pb2
from vnas import metrics
from vnas.cancelwatch import CancelWatch, TaskCancelled
from vnas.executors import Executor
from vnas.prefetch import PrefetchGauge
from vnas.settings import VnasSettings
from vnas.settler import RedisSettleError, Settler
from vnas.stream import DispatchStream, Entry, is_poison, parse_dispatch, task_context
from vnas.task import TaskContext, TaskOutcome
from vncommon import errortext, keys, tracing
from vncommon.consumer import Loop, StreamConsumer
from vncommon.consumergroup import StreamEntry
from vncommon.logs import log_context
from vncommon.phase import Phase, RedisRetry
from vncommon.redisconn import REDIS_ERRORS
from vncommon.state import task_status

log = logging.getLogger(__name__)

# Renew several times per idle window so one slow round trip never lets an entry look abandoned.
KEEP_FRESH_PER_IDLE = 3


class TaskConsumer(StreamConsumer[Entry]):
    """One worker of consumer group `task-workers` running up to VNAS_CONCURRENCY tasks at once."""

    name = "vnas"

    def __init__(self, client: redis.Redis, settings: VnasSettings, executor: Executor) -> None:
        self._stream = DispatchStream(client, settings.consumer_name,
                                      keys.dispatch_tiers(settings.common.stream_layouts))
        super().__init__(self._stream, concurrency=settings.concurrency, claim_idle_ms=settings.claim_idle_ms,
                         claim_interval_s=settings.claim_idle_ms / 1000 / KEEP_FRESH_PER_IDLE,
                         block_ms=settings.common.default_block_ms, max_extra=settings.prefetch)
        self._settings = settings
        self._executor = executor
        self._retry = RedisRetry(self.phase, (*REDIS_ERRORS, RedisSettleError), self.on_redis_error)
        self._prefetch = PrefetchGauge(settings.concurrency, settings.prefetch)
        self._settler = Settler(self._stream, settings.common.request_ttl_seconds, self._retry,
                                running=lambda: self.running, task_seconds=lambda: self._prefetch.average_s)
        self._cancels = CancelWatch(self._stream, settings.cancel_check_ms / 1000)
        self._keep_fresh: asyncio.Task[None] | None = None

    @property
    def consumer_name(self) -> str:
        return self._stream.consumer

    async def run(self, drain: bool = False) -> None:
        """The worker's whole life in one call, in the service runner's order: fetch and keep fresh;
        once fetching ends (`stop_fetching()`, or with `drain` once the stream has nothing left for this
        worker) the grace; then hand back. VnasService drives the same steps through the runner."""
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self.keep_fresh_loop(), name=f"{self.name}-keep-fresh")
                group.create_task(self._cancels.loop(self.phase), name=f"{self.name}-cancel-watch")
                group.create_task(self._fetch_then_finish(drain), name=f"{self.name}-fetch")
        finally:
            await self.hand_back()

    async def _fetch_then_finish(self, drain: bool) -> None:
        grace = self._settings.shutdown_grace_s
        try:
            await self.fetch_loop(drain)
        except asyncio.CancelledError:
            grace = 0.0
            raise
        finally:
            await self.finish(grace)

    def loops(self, drain: bool = False) -> dict[str, Loop]:
        return {f"{self.name}-fetch": self.fetch_loop(drain), f"{self.name}-keep-fresh": self.keep_fresh_loop(),
                f"{self.name}-cancel-watch": self._cancels.loop(self.phase)}

    async def hand_back(self) -> None:
        # Renewing after the hand-back would undo it: keep-fresh ends first.
        if self._keep_fresh is not None:
            self._keep_fresh.cancel()
            await asyncio.wait({self._keep_fresh})
        await super().hand_back()

    def fetch_extra(self) -> int:
        return self._prefetch.extra()

    def rank(self, entry: Entry) -> int:
        return self._stream.tier_of(entry.entry_id)  # a queued high task starts before queued batch ones

    # -- metrics -----------------------------------------------------------------------------------

    def on_redis_error(self, operation: str) -> None:
        metrics.REDIS_ERRORS.labels(operation).inc()

    def on_reclaimed(self, count: int) -> None:
        metrics.TASKS_RECLAIMED.inc(count)

    def on_in_flight(self, delta: int) -> None:
        metrics.TASKS_IN_FLIGHT.inc(delta)

    # -- fetch, execute, settle --------------------------------------------------------------------

    async def prepare(self, entries: list[StreamEntry]) -> list[Entry]:
        """Read the batch's task documents in one round trip; on a Redis error each task reads its own."""
        if not entries:
            return []
        try:
            return await self._stream.read_payloads(entries)
        except (*REDIS_ERRORS, ResponseError) as exc:
            log.warning("could not prefetch task documents", extra={"fields": {"error": str(exc)}})
            return [Entry(entry.entry_id, entry.fields, entry.deliveries) for entry in entries]

    async def handle(self, entry: Entry) -> Loop | None:
        try:
            dispatch = parse_dispatch(entry)
        except ValueError as exc:
            await self._reject(entry, f"malformed dispatch entry: {exc}")
            return None
        if not dispatch.request_id or not (dispatch.payload_key or dispatch.payload):
            await self._reject(entry, "dispatch entry lacks requestId, or both payloadKey and payload")
            return None
        ctx = task_context(dispatch)
        with contextlib.ExitStack() as scope:
            scope.enter_context(log_context(requestId=ctx.request_id, groupIndex=ctx.group_index,
                                            taskId=ctx.task_id, traceId=ctx.trace_id or None))
            span = scope.enter_context(tracing.task_attempt_span(dispatch, self.consumer_name))
            if entry.cancelled:
                span.outcome("skipped", "its request was cancelled")
                await self._skip(entry, metrics.SKIPPED_QUEUED)
                return None
            if is_poison(entry, dispatch):
                span.outcome("dead_lettered", "delivered more often than its budget allows")
                if await self._settler.dead_letter(entry, dispatch):
                    self.outcomes["dead_lettered"] += 1
                return None
            try:
                outcome = await self._execute_safely(ctx, dispatch, entry)
            except TaskCancelled:
                span.outcome("skipped", "its request was cancelled while it ran")
                await self._skip(entry, metrics.SKIPPED_RUNNING)
                return None
            if outcome is None:
                return None  # stopping, and the task XML could not be read: left pending
            span.outcome(task_status(outcome.completed), outcome.error)
            # The settle runs once the slot is free (the log context and the span stay open until it ends),
            # so tasks that finish while a settle is in flight join the next batch.
            return self._settle(scope.pop_all(), ctx, entry, dispatch, outcome)

    async def _settle(self, scope: contextlib.ExitStack, ctx: TaskContext, entry: Entry,
                      dispatch: streams_pb2.TaskDispatch, outcome: TaskOutcome) -> None:
        with scope:
            stored = await self.shielded(self._settler.settle(entry, dispatch, outcome))
            if stored is not None:
                self._record(ctx, entry.entry_id, outcome, stored)

    async def _skip(self, entry: Entry, reason: str) -> None:
        """A task of a cancelled request: acknowledged, counted, never settled."""
        if await self.shielded(self._settler.skip(entry)):
            self.outcomes["skipped"] += 1
            if reason == metrics.SKIPPED_QUEUED:  # a running one is counted by the cancel watch
                metrics.TASKS_SKIPPED.labels(reason).inc()
            log.info("skipped a task of a cancelled request", extra={"fields": {
                "entryId": entry.entry_id, "running": reason == metrics.SKIPPED_RUNNING}})

    async def _reject(self, entry: Entry, error: str) -> None:
        if await self._settler.reject(entry, error):
            self.outcomes["rejected"] += 1

    async def _execute_safely(self, ctx: TaskContext, dispatch: streams_pb2.TaskDispatch, entry: Entry
                              ) -> TaskOutcome | None:
        """Execute; a bug or a refused read becomes a failed outcome, so the entry cannot turn into a
        poison message that every worker reclaims and crashes on in turn."""
        try:
            return await self._execute(ctx, dispatch, entry)
        except TaskCancelled:
            raise
        except ResponseError as exc:
            return TaskOutcome.failed(f"cannot read the task XML from {dispatch.payload_key}: {exc}")
        except Exception as exc:
            log.exception("worker error while executing a task")
            return TaskOutcome.failed(f"worker error: {type(exc).__name__}: {exc}")

    async def _execute(self, ctx: TaskContext, dispatch: streams_pb2.TaskDispatch, entry: Entry
                       ) -> TaskOutcome | None:
        """The outcome; None when stopping before the task XML could be read."""
        key = dispatch.payload_key
        payload = dispatch.payload.encode() if dispatch.payload else entry.payload
        if not entry.prefetched and not dispatch.payload:
            read, payload = await self._retry("read the task XML", lambda: self._stream.read_payload(key),
                                              gives_up_at=Phase.STOPPING, fields={"entryId": entry.entry_id})
            if not read:
                return None
        if payload is None:
            # The request was purged (TTL) or never stored: retrying would fail forever.
            return TaskOutcome.failed(f"payload missing: task XML key {key} does not exist (expired or purged)")
        started = time.monotonic()
        outcome = await self._cancels.execute(ctx.request_id, self._executor.run(ctx, payload))
        self._prefetch.observe(time.monotonic() - started)
        return outcome

    def _record(self, ctx: TaskContext, entry_id: str, outcome: TaskOutcome, stored: bool) -> None:
        status = task_status(outcome.completed)
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

    # -- keep fresh --------------------------------------------------------------------------------

    async def keep_fresh_loop(self) -> None:
        """Renew the entries this worker runs until its work is over (phase STOPPED)."""
        self._keep_fresh = asyncio.current_task()
        interval = self._settings.claim_idle_ms / 1000 / KEEP_FRESH_PER_IDLE
        warned: set[str] = set()
        while not await self.phase.sleep(interval, until=Phase.STOPPED):
            running = self.in_flight_ids()
            try:
                taken = await self._stream.keep_fresh(running)
            except (*REDIS_ERRORS, ResponseError) as exc:
                self.on_redis_error("keep fresh")
                log.warning("could not keep running entries fresh", extra={"fields": {"error": str(exc)}})
                continue
            still_running = set(self.in_flight_ids())
            for entry_id in taken:
                if entry_id in still_running and entry_id not in warned:
                    warned.add(entry_id)
                    log.warning("another worker reclaimed an entry this worker still runs",
                                extra={"fields": {"entryId": entry_id}})
            warned &= still_running
