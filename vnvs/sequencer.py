"""Running one request: hydrate, run the groups strictly in order, assemble, finish exactly once.

A run is resumable: completed groups are read back from their results, and in the current group tasks
with a stored result count as done and tasks already dispatched are left to their stream entries (a
dead worker's entries are reclaimed), so a takeover after a crash repeats no finished work.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any, TypeVar

import redis.asyncio as redis
from lxml import etree

from vn.v1 import streams_pb2
from vncommon import errortext, keys, vnml
from vncommon.errors import RunAttemptsExhausted, TaskRetriesExhausted, VnError
from vncommon.logs import log_context
from vncommon.redisconn import REDIS_ERRORS as _REDIS_DOWN
from vncommon.state import GROUP_HASH, REQUEST_HASH, GroupStatus, Status
from vncommon.streams import from_fields, text
from vncommon.xmlsafe import parse_xml
from vnvs import metrics
from vnvs.assembly import apply_results, assemble_response
from vnvs.dispatch import Dispatcher, TaskRef
from vnvs.hydration import TaskDocument
from vnvs.hydration.sandbox import CpuBudget, HydrationSandbox
from vnvs.hydration.wire import document_limits, serialize_document
from vnvs.ledger import RequestEnded, RunLedger
from vnvs.settings import VnvsSettings
from vnvs.tracker import Decision, GroupTracker, backoff_seconds

log = logging.getLogger(__name__)
T = TypeVar("T")
# Working documents up to this size are parsed and serialised on the event loop: a thread hop costs more
# than the work. Hydration itself always runs in the sandbox's processes, however small the request.
INLINE_XML_BYTES = 256 * 1024


class RequestRun:
    """Drives one request from its stored XML to a terminal state."""

    def __init__(self, client: redis.Redis, settings: VnvsSettings, sandbox: HydrationSandbox, request_id: str,
                 trace_id: str) -> None:
        self._client = client
        self._settings = settings
        self._sandbox = sandbox
        self.request_id = request_id
        self.trace_id = trace_id
        self._ledger = RunLedger(client, request_id, settings.common.request_ttl_seconds,
                                 settings.common.stream_shards)
        self._dispatcher = Dispatcher(settings.common.request_ttl_seconds, settings.common.stream_shards)
        self._updates_from = "0-0"
        self._task_counts: list[int] = []
        self._current_group = -1  # no group reached yet (the whole-document pass)
        self._offload = False

    async def run(self) -> None:
        with log_context(requestId=self.request_id, traceId=self.trace_id):
            try:
                await self._run()
            except RequestEnded:
                log.info("request already ended; nothing to run")
            except VnError as exc:
                await self._fail(exc)
            except (asyncio.CancelledError, *_REDIS_DOWN):
                raise  # the lease lapses and another instance (or this one) resumes the request
            except Exception as exc:
                log.exception("orchestration failed")
                await self._fail(VnError(f"orchestration error: {type(exc).__name__}: {exc}"))

    async def _cpu(self, function: Callable[..., T], *args: Any) -> T:
        """Run XML work inline for small requests; in a thread for large ones, so the loop stays live."""
        if self._offload:
            return await asyncio.to_thread(function, *args)
        return function(*args)

    async def _run(self) -> None:
        xml, starts = await self._ledger.begin()
        if xml is None:
            raise VnError("the request document is missing (purged before it could run)")
        if starts > self._settings.max_run_starts:
            raise RunAttemptsExhausted(
                f"the request's run was started {starts} times without finishing a group (each run was lost: "
                f"a crash, a kill or a stalled lease); failed instead of resumed again (VNVS_MAX_RUN_STARTS)",
                {"runStarts": str(starts)})
        hydration = self._settings.hydration
        budget = CpuBudget(hydration.max_seconds)
        prepared = await self._sandbox.prepare(self.request_id, xml, budget)
        self._offload = len(prepared) > INLINE_XML_BYTES
        root = await self._cpu(parse_xml, prepared, document_limits(hydration.max_group_task_bytes),
                               "working document")
        # Counted by the rule vnapi checked at submit, after hrefs had their say: a request runs whole or
        # fails naming the reason, never as fewer groups than it holds.
        group_count = vnml.count_groups(root)
        self._task_counts = [0] * group_count
        results: list[bytes] = []
        for group_index in range(group_count):
            self._current_group = group_index
            completed, expected = await self._ledger.group_progress(group_index)
            with log_context(groupIndex=group_index):
                if completed:
                    results = await self._read_results(group_index, [str(i) for i in range(1, expected + 1)])
                    self._task_counts[group_index] = expected
                else:
                    results = await self._run_group(root, group_index, budget)
                if group_index < group_count - 1:  # the last group's results go straight into the response
                    await self._cpu(apply_results, root, group_index, results)
                if not completed:
                    await self._ledger.close_group(group_index, len(results))
        response = await self._cpu(assemble_response, root, self.request_id, results,
                                   self._settings.common.response_max_bytes)
        if await self._ledger.finish(Status.SUCCEEDED, response, "", self._task_counts):
            metrics.REQUESTS_FINISHED.labels(Status.SUCCEEDED).inc()
            log.info("request succeeded", extra={"fields": {"groups": group_count, "bytes": len(response)}})

    async def _run_group(self, root: etree._Element, group_index: int, budget: CpuBudget) -> list[bytes]:
        document = await self._cpu(serialize_document, root)
        tasks = await self._sandbox.hydrate_group(self.request_id, document, group_index, budget)
        self._task_counts[group_index] = len(tasks)
        ids = [t.task_id for t in tasks]
        first, done, in_flight = await self._ledger.open_group(group_index, ids)
        tracker = GroupTracker(ids, self._settings.common.max_task_retries,
                               self._settings.task_wait_timeout_ms / 1000)
        pending = set(tracker.start(asyncio.get_running_loop().time(), done, in_flight))
        refs = {t.task_id: self._ref(group_index, t) for t in tasks}
        # A resumed run leaves tasks already dispatched to their entries; it only sends what never went out.
        to_send = [(refs[t.task_id], t.xml) for t in tasks if t.task_id in pending and t.task_id not in in_flight]
        pipe = self._ledger.pipeline(atomic=True)  # all-or-nothing, and workers see the whole group at once
        if first:
            self._ledger.queue_group_started(pipe, group_index)
        self._ledger.queue_group_state(pipe, group_index, {
            GROUP_HASH.expected: len(tasks), GROUP_HASH.completed: len(done), GROUP_HASH.failed: 0,
            GROUP_HASH.status: GroupStatus.RUNNING})
        self._dispatcher.queue_tasks(pipe, to_send, self._settings.common.max_task_retries)
        await pipe.execute()
        log.info("group dispatched", extra={"fields": {
            "tasks": len(tasks), "sent": len(to_send), "done": len(done), "inFlight": len(pending) - len(to_send)}})
        with metrics.GROUP_DURATION.time():
            await self._await_group(tracker, refs, group_index)
        return await self._read_results(group_index, ids)

    def _ref(self, group_index: int, task: TaskDocument) -> TaskRef:
        return TaskRef(self.request_id, group_index, task.group_name, task.task_id, task.valuation_name,
                       self.trace_id)

    async def _await_group(self, tracker: GroupTracker, refs: dict[str, TaskRef], group_index: int) -> None:
        """Read updates until every task completed; retry failures when their backoff is due."""
        loop = asyncio.get_running_loop()
        completed = 0
        while not tracker.finished:
            # The progress counter rides along with the next read: one round trip per wake-up.
            updates = await self._read_updates(tracker, group_index, completed)
            completed = 0
            for update in updates:
                if update.group_index == group_index:
                    decision = tracker.on_update(update)
                    completed += decision is Decision.COMPLETED
                    self._decide(tracker, refs, update.task_id, decision)
            for task_id, decision in tracker.expired(loop.time()):
                self._decide(tracker, refs, task_id, decision)
            due = tracker.due_retries(loop.time())
            if due:
                await self._dispatch_retries(tracker, [refs[task_id] for task_id in due])

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
        self._dispatcher.queue_entries(pipe, entries)
        await pipe.execute()

    async def _read_updates(self, tracker: GroupTracker, group_index: int, completed: int
                            ) -> list[streams_pb2.TaskUpdate]:
        """Block on this request's own updates stream until something arrives or a deadline is due."""
        block_ms = self._settings.common.default_block_ms
        wake_at = tracker.next_deadline()
        if wake_at is not None:
            until_ms = (wake_at - asyncio.get_running_loop().time()) * 1000
            block_ms = max(1, min(block_ms, int(until_ms) + 1))
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
        if self._current_group >= 0:
            pipe = self._ledger.pipeline()
            self._ledger.queue_group_state(pipe, self._current_group, {
                GROUP_HASH.status: GroupStatus.FAILED,
                GROUP_HASH.failed: int(isinstance(exc, TaskRetriesExhausted))})
            await pipe.execute()
        if await self._ledger.finish(Status.FAILED, detail.encode(), detail, self._task_counts):
            metrics.REQUESTS_FINISHED.labels(Status.FAILED).inc()
            log.warning("request failed", extra={"fields": {"reason": exc.reason,
                                                            "error": errortext.summary(exc.message)}})
