"""Running one request: hydrate, run the groups strictly in order, assemble, finish exactly once.

A run is resumable: completed groups are read back from their results, and in the current group tasks
with a stored result count as done and tasks already dispatched are left to their stream entries (a
dead worker's entries are reclaimed), so a takeover after a crash repeats no finished work.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from typing import Any

import redis.asyncio as redis

from vn.v1 import streams_pb2
from vncommon import errortext, keys, tracing
from vncommon.aio import in_turns
from vncommon.errors import RunAttemptsExhausted, TaskRetriesExhausted, VnError
from vncommon.logs import log_context
from vncommon.redisconn import REDIS_ERRORS as _REDIS_DOWN
from vncommon.state import REQUEST_HASH, Status
from vncommon.streams import from_fields, text
from vnvs import metrics
from vnvs.assembly import Fold, folded_response
from vnvs.cancellation import CancelCheck
from vnvs.dispatch import Dispatcher, TaskRef
from vnvs.hydration import TaskDocument
from vnvs.hydration.sandbox import CpuBudget, HydrationSandbox
from vnvs.hydration.wire import document_limits
from vnvs.ledger import RequestEnded, RunCancelled, RunLedger
from vnvs.settings import VnvsSettings
from vnvs.tracker import Decision, GroupTracker, backoff_seconds

log = logging.getLogger(__name__)
# A response from a working document and results up to this size is assembled on the event loop: a
# process hop costs more than the work. Hydration itself always runs in the sandbox's processes; a
# request up to this size has its group 0 hydrated in the job of the whole-document pass (one hop
# fewer), a larger one in a job of its own, so that its request bytes are let go before that.
INLINE_XML_BYTES = 256 * 1024
# The group's progress counter (GetStatus) is written at most this often, and when the group closes:
# a short group costs no progress writes at all, a long one a few a second.
PROGRESS_INTERVAL_S = 0.25
# Held tasks are sent once 1/REFILL_FRACTION of the window is free (or all that is left fits): a refill
# is one round trip for many tasks, while the stream still holds most of the window for the workers.
REFILL_FRACTION = 8


class RequestRun:
    """Drives one request from its stored XML to a terminal state."""

    def __init__(self, client: redis.Redis, settings: VnvsSettings, sandbox: HydrationSandbox, request_id: str,
                 trace_id: str) -> None:
        self._client = client
        self._settings = settings
        self._sandbox = sandbox
        self.request_id = request_id
        self.trace_id = trace_id
        common = settings.common
        self._ledger = RunLedger(client, request_id, common.request_ttl_seconds, common.stream_shards)
        self._cancel = CancelCheck(client, request_id, common.request_ttl_seconds, common.stream_shards)
        self._dispatcher = Dispatcher(common.request_ttl_seconds, common.stream_shards)
        self._updates_from = "0-0"
        self._task_counts: list[int] = []
        self._current_group = -1  # no group reached yet (the whole-document pass)
        # Set by admission for a request that can never fit: the run records this failure and ends.
        self.refusal: VnError | None = None

    async def run(self) -> None:
        with log_context(requestId=self.request_id, traceId=self.trace_id), \
                tracing.run_span(self.request_id, self.trace_id):
            try:
                await self._run()
            except RunCancelled:
                metrics.REQUESTS_FINISHED.labels(Status.CANCELLED).inc()
                log.info("request cancelled; run stopped")
                await self._ledger.retire()
            except RequestEnded:
                log.info("request already ended; nothing to run")
                await self._ledger.retire()
            except VnError as exc:
                await self._fail(exc)
            except (asyncio.CancelledError, *_REDIS_DOWN):
                raise  # the lease lapses and another instance (or this one) resumes the request
            except Exception as exc:
                log.exception("orchestration failed")
                await self._fail(VnError(f"orchestration error: {type(exc).__name__}: {exc}"))

    async def _run(self) -> None:
        xml, starts = await self._ledger.begin()
        if self.refusal is not None:
            raise self.refusal
        self._cancel.deadline_at_ms = self._ledger.deadline_at_ms
        common = self._settings.common
        self._dispatcher = Dispatcher(common.request_ttl_seconds, common.stream_shards, self._ledger.priority)
        await self._cancel.check_deadline()
        if xml is None:
            raise VnError("the request document is missing (purged before it could run)")
        if starts > self._settings.max_run_starts:
            raise RunAttemptsExhausted(
                f"the request's run was started {starts} times without finishing a group (each run was lost: "
                f"a crash, a kill or a stalled lease); failed instead of resumed again (VNVS_MAX_RUN_STARTS)",
                {"runStarts": str(starts)})
        budget = CpuBudget(self._settings.hydration.max_seconds)
        # The working document stays bytes here: its tree (many times the text) lives only in a hydration
        # process, one job at a time, so what a run holds is a few times its payload (docs/performance.md).
        with tracing.hydration_span(-1, self.trace_id) as span:  # and group 0, if fresh (none of it recorded)
            document, group_count, first = await self._sandbox.prepare_with_first_group(
                self.request_id, xml, budget, self._ledger.fresh and len(xml) <= INLINE_XML_BYTES)
            span.set("vn.first_group_hydrated", first is not None)
        del xml
        self._task_counts = [0] * group_count
        folds: list[Fold] = []  # results not yet folded into `document`; the next job folds them in
        for group_index in range(group_count):
            self._current_group = group_index
            await self._cancel.check_deadline()
            completed, expected, started_published = await self._ledger.group_progress(group_index)
            with log_context(groupIndex=group_index), tracing.group_span(group_index, self.trace_id):
                if completed:
                    results = await self._read_results(group_index, [str(i) for i in range(1, expected + 1)])
                    self._task_counts[group_index] = expected
                else:
                    if group_index == 0 and first is not None:
                        if isinstance(first, VnError):
                            raise first
                        tasks, first = first, None
                    else:
                        with tracing.hydration_span(group_index, self.trace_id):
                            tasks, document = await self._sandbox.fold_and_hydrate(
                                self.request_id, document, group_index, budget, folds)
                    folds = []
                    results = await self._run_group(tasks, group_index, not started_published)
                    await self._ledger.close_group(group_index, len(results))
                folds.append((group_index, results))
        with tracing.assembly_span(self.trace_id):
            response = await self._assemble(document, folds, budget)
        if await self._ledger.finish(Status.SUCCEEDED, response, "", self._task_counts):
            metrics.REQUESTS_FINISHED.labels(Status.SUCCEEDED).inc()
            log.info("request succeeded", extra={"fields": {"groups": group_count, "bytes": len(response)}})

    async def _assemble(self, document: bytes, folds: list[Fold], budget: CpuBudget) -> bytes:
        """The response; the last group's results go straight into it. Inline for a small document (a
        process hop costs more than the work), in a hydration process for a large one."""
        (_, last), earlier = folds[-1], folds[:-1]
        limits = document_limits(self._settings.hydration.max_group_task_bytes)
        max_bytes = self._settings.common.response_max_bytes
        size = len(document) + sum(len(blob) for _, results in folds for blob in results)
        if size <= INLINE_XML_BYTES:
            return folded_response(document, limits, earlier, self.request_id, last, max_bytes)
        return await self._sandbox.assemble(self.request_id, document, earlier, last, max_bytes, budget)

    async def _run_group(self, tasks: list[TaskDocument], group_index: int, first: bool) -> list[bytes]:
        self._task_counts[group_index] = len(tasks)
        ids = [t.task_id for t in tasks]
        done, in_flight = await self._ledger.open_group(group_index, fresh=first)
        tracker = GroupTracker(ids, self._settings.common.max_task_retries,
                               self._settings.task_wait_timeout_ms / 1000)
        pending = set(tracker.start(asyncio.get_running_loop().time(), done, in_flight))
        traceparent = tracing.current_traceparent()
        refs = {t.task_id: self._ref(group_index, t, traceparent) async for t in in_turns(tasks)}
        # A resumed run leaves tasks already dispatched to their entries; it only sends what never went out.
        unsent = [(refs[t.task_id], t.xml) for t in tasks if t.task_id in pending and t.task_id not in in_flight]
        del tasks  # from here the documents live in `unsent` until sent, then in Redis
        # At most VNVS_REQUEST_WINDOW of the request's tasks are out at once; the rest follow as they finish.
        room = max(0, self._settings.request_window - (len(pending) - len(unsent)))
        to_send, held = unsent[:room], deque(unsent[room:])
        del unsent
        tracker.hold([ref.task_id for ref, _ in held])
        # All-or-nothing, workers see the whole batch at once, and only while the request goes on.
        pipe = self._ledger.pipeline(guarded=True)
        self._ledger.queue_group_running(pipe, group_index, len(ids), len(done), first)
        await self._dispatcher.queue_tasks(pipe, to_send, self._settings.common.max_task_retries)
        await self._ledger.run_guarded(pipe)
        sent = len(to_send)
        del to_send
        log.info("group dispatched", extra={"fields": {
            "tasks": len(ids), "sent": sent, "held": len(held), "done": len(done),
            "inFlight": len(pending) - sent - len(held)}})
        with metrics.GROUP_DURATION.time():
            await self._await_group(tracker, refs, group_index, held)
        return await self._read_results(group_index, ids)

    async def _send_held(self, tracker: GroupTracker, held: deque[tuple[TaskRef, bytes]]) -> None:
        """Refill the request's window from its held tasks, once a batch's worth of room is free."""
        room = self._settings.request_window - tracker.outstanding
        if room < min(len(held), max(1, self._settings.request_window // REFILL_FRACTION)):
            return
        batch = [held.popleft() for _ in range(min(room, len(held)))]
        tracker.release([ref.task_id for ref, _ in batch], asyncio.get_running_loop().time())
        pipe = self._ledger.pipeline(atomic=True)
        await self._dispatcher.queue_tasks(pipe, batch, self._settings.common.max_task_retries)
        await pipe.execute()

    def _ref(self, group_index: int, task: TaskDocument, traceparent: str) -> TaskRef:
        inline = task.xml.decode() if len(task.xml) <= self._settings.inline_task_bytes else ""
        return TaskRef(self.request_id, group_index, task.group_name, task.task_id, task.valuation_name,
                       self.trace_id, traceparent, inline)

    async def _await_group(self, tracker: GroupTracker, refs: dict[str, TaskRef], group_index: int,
                           held: deque[tuple[TaskRef, bytes]]) -> None:
        """Read updates until every task completed; retry failures when their backoff is due; send held
        tasks as the window frees up."""
        loop = asyncio.get_running_loop()
        unreported = 0
        report_at = loop.time() + PROGRESS_INTERVAL_S
        while not tracker.finished:
            # The progress counter rides along with the next read once it is due: no round trip of its own.
            due_progress = unreported if loop.time() >= report_at else 0
            updates = await self._read_updates(tracker, group_index, due_progress)
            if due_progress:
                unreported -= due_progress
                report_at = loop.time() + PROGRESS_INTERVAL_S
            for update in updates:
                self._cancel.on_update(update)
                if update.group_index == group_index:
                    decision = tracker.on_update(update)
                    unreported += decision is Decision.COMPLETED
                    self._decide(tracker, refs, update.task_id, decision)
            for task_id, decision in tracker.expired(loop.time()):
                self._decide(tracker, refs, task_id, decision)
            await self._cancel.check_deadline()
            due = tracker.due_retries(loop.time())
            if due:
                await self._dispatch_retries(tracker, [refs[task_id] for task_id in due])
            if held:
                await self._send_held(tracker, held)

    def _decide(self, tracker: GroupTracker, refs: dict[str, TaskRef], task_id: str, decision: Decision) -> None:
        state = tracker.tasks.get(task_id)
        if state is None or decision in (Decision.IGNORE, Decision.COMPLETED):
            return
        if decision is Decision.RETRY:
            s = self._settings
            delay = backoff_seconds(state.attempt, s.retry_base_ms, s.retry_cap_ms)
            tracker.schedule_retry(task_id, asyncio.get_running_loop().time() + delay)
            log.info("task attempt failed; retrying", extra={"fields": {
                "taskId": task_id, "attempt": state.attempt, "retryInMs": round(delay * 1000),
                "error": errortext.summary(state.last_error)}})  # the rest quotes script output
            return
        ref = refs[task_id]
        raise TaskRetriesExhausted(
            f"task {task_id} of group {ref.group_index} ({ref.group_name}) failed after {state.attempt} "
            f"attempts: {state.last_error}",
            {"group": ref.group_name, "groupIndex": str(ref.group_index), "taskId": task_id,
             "valuation": ref.valuation_name, "attempts": str(state.attempt),
             "deliveries": str(state.deliveries_used), "error": state.last_error},
        )

    async def _dispatch_retries(self, tracker: GroupTracker, refs: list[TaskRef]) -> None:
        now = asyncio.get_running_loop().time()
        entries = [(ref, tracker.begin_retry(ref.task_id, now), 0) for ref in refs]
        entries = [(ref, attempt, tracker.remaining_deliveries(ref.task_id)) for ref, attempt, _ in entries]
        pipe = self._ledger.pipeline(atomic=True)
        pipe.hincrby(keys.request_state_key(self.request_id), REQUEST_HASH.retry_count, len(entries))
        metrics.TASK_RETRIES.inc(len(entries))
        await self._dispatcher.queue_entries(pipe, entries)
        await pipe.execute()

    async def _read_updates(self, tracker: GroupTracker, group_index: int, completed: int
                            ) -> list[streams_pb2.TaskUpdate]:
        """Block on this request's own updates stream until something arrives or a deadline is due."""
        block_ms = self._settings.common.default_block_ms
        wake_at = tracker.next_deadline()
        if wake_at is not None:
            until_ms = (wake_at - asyncio.get_running_loop().time()) * 1000
            block_ms = max(1, min(block_ms, int(until_ms) + 1))
        until_deadline = self._cancel.remaining_ms()
        if until_deadline is not None:
            block_ms = max(1, min(block_ms, until_deadline + 1))
        pipe = self._ledger.pipeline()
        if completed:
            self._ledger.queue_completed(pipe, group_index, completed)
        pipe.xread({keys.updates_stream(self.request_id): self._updates_from}, count=1000, block=block_ms)
        reply: Any = (await pipe.execute())[-1]
        updates = []
        for _, entries in reply or []:
            for entry_id, fields in entries:
                self._updates_from = text(entry_id)
                metrics.observe_update_lag(self._updates_from)
                updates.append(from_fields(streams_pb2.TaskUpdate, fields))
        return updates

    async def _read_results(self, group_index: int, ids: list[str]) -> list[bytes]:
        values = await self._ledger.results(group_index, ids)
        missing = [task_id for task_id, value in zip(ids, values, strict=True) if value is None]
        if missing:
            raise VnError(f"results of group {group_index} are missing for tasks {', '.join(missing[:10])}")
        return [value for value in values if value is not None]

    async def _fail(self, exc: VnError) -> None:
        detail = json.dumps({"reason": exc.reason, "message": exc.message, "groupIndex": self._current_group,
                             **exc.metadata})
        failed_group = ((self._current_group, int(isinstance(exc, TaskRetriesExhausted)))
                        if self._current_group >= 0 else None)
        if await self._ledger.finish(Status.FAILED, detail.encode(), detail, self._task_counts, failed_group):
            metrics.REQUESTS_FINISHED.labels(Status.FAILED).inc()
            log.warning("request failed", extra={"fields": {"reason": exc.reason,
                                                            "error": errortext.summary(exc.message)}})
