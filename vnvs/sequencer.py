"""Running one request: hydrate, run the groups strictly in order, assemble, finish exactly once.

A run is resumable: completed groups are read back from their results, and in the current group only
tasks without a stored result are dispatched again, so a takeover after a crash repeats no finished work.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any

import redis.asyncio as redis
from lxml import etree

from vn.v1 import streams_pb2
from vncommon import keys, lifecycle
from vncommon.errors import VnError
from vncommon.logs import log_context
from vncommon.redisconn import REDIS_ERRORS as _REDIS_DOWN
from vncommon.streams import from_fields
from vncommon.timeutil import utc_now_iso
from vncommon.xmlsafe import parse_xml
from vnvs.assembly import apply_results, assemble_response
from vnvs.dispatch import Dispatcher, TaskRef
from vnvs.hydration import HydrationEngine, HydrationError, TaskDocument
from vnvs.retention import expire_request
from vnvs.settings import VnvsSettings
from vnvs.tracker import Decision, GroupTracker, backoff_seconds

log = logging.getLogger(__name__)


class GroupFailed(VnError):
    """A task of the group failed on its last allowed attempt."""

    reason = "TASK_RETRIES_EXHAUSTED"


@dataclass(slots=True)
class GroupOutcome:
    task_count: int


class RequestRun:
    """Drives one request from its stored XML to a terminal state."""

    def __init__(self, client: redis.Redis, settings: VnvsSettings, request_id: str, trace_id: str) -> None:
        self._client = client
        self._settings = settings
        self.request_id = request_id
        self.trace_id = trace_id
        self._dispatcher = Dispatcher(client, settings.common.request_ttl_seconds)
        self._updates_from = "0-0"
        self._task_counts: list[int] = []

    async def run(self) -> None:
        with log_context(requestId=self.request_id, traceId=self.trace_id):
            try:
                await self._run()
            except VnError as exc:
                await self._fail(exc)
            except (asyncio.CancelledError, *_REDIS_DOWN):
                raise  # the lease lapses and another instance (or this one) resumes the request
            except Exception as exc:
                log.exception("orchestration failed")
                await self._fail(VnError(f"orchestration error: {type(exc).__name__}: {exc}"))

    async def _run(self) -> None:
        xml: bytes | None = await self._client.get(keys.request_xml_key(self.request_id))  # type: ignore[assignment]
        if xml is None:
            raise VnError("the request document is missing (purged before it could run)")
        root = await asyncio.to_thread(parse_xml, xml, what="request")
        engine = HydrationEngine(self._settings.hydration, self.request_id)
        await self._mark_started()
        await asyncio.to_thread(engine.prepare, root)
        group_count = len(root.findall("project/group"))
        self._task_counts = [0] * group_count
        for group_index in range(group_count):
            await self._run_or_restore_group(engine, root, group_index)
        response = await asyncio.to_thread(assemble_response, root, self.request_id)
        await self._client.set(keys.request_response_key(self.request_id), response)
        if await lifecycle.finish(self._client, self.request_id, "succeeded"):
            log.info("request succeeded", extra={"fields": {"groups": group_count, "bytes": len(response)}})
        await self._retire()

    async def _mark_started(self) -> None:
        state_key = keys.request_state_key(self.request_id)
        pipe = self._client.pipeline(transaction=True)
        pipe.hsetnx(state_key, "startedAt", utc_now_iso())
        pipe.hset(state_key, "status", "started")
        pipe.hsetnx(state_key, "startedPublished", "1")
        first = (await pipe.execute())[2]
        if first:
            await lifecycle.publish(self._client, lifecycle.new_event(self.request_id, "started"))

    async def _run_or_restore_group(self, engine: HydrationEngine, root: etree._Element, group_index: int) -> None:
        group_key = keys.group_state_key(self.request_id, group_index)
        status, expected = await self._client.hmget(group_key, ["status", "expected"])
        if status == b"completed":
            count = int(expected or 0)
            results = await self._read_results(group_index, [str(i) for i in range(1, count + 1)])
            await asyncio.to_thread(apply_results, root, group_index, results)
            self._task_counts[group_index] = count
            return
        with log_context(groupIndex=group_index):
            await self._run_group(engine, root, group_index)

    async def _run_group(self, engine: HydrationEngine, root: etree._Element, group_index: int) -> None:
        group_key = keys.group_state_key(self.request_id, group_index)
        await self._client.hset(keys.request_state_key(self.request_id), "currentGroup", group_index)
        if await self._client.hsetnx(group_key, "startedPublished", "1"):
            await lifecycle.publish(self._client, lifecycle.new_event(self.request_id, "group_started", group_index))
        try:
            tasks = await asyncio.to_thread(engine.hydrate_group, root, group_index)
        except HydrationError:
            await self._client.hset(group_key, mapping={"status": "failed"})
            raise
        self._task_counts[group_index] = len(tasks)
        ids = [t.task_id for t in tasks]
        done = await self._stored_results(group_index, ids)
        in_flight = await self._dispatcher.dispatched_attempts(self.request_id, group_index)
        await self._client.hset(group_key, mapping={
            "expected": len(tasks), "completed": len(done), "failed": 0, "status": "running"})
        tracker = GroupTracker(ids, self._settings.common.max_task_retries,
                               self._settings.task_wait_timeout_ms / 1000)
        pending = tracker.start(asyncio.get_running_loop().time(), done, in_flight)
        refs = {t.task_id: self._ref(group_index, t) for t in tasks}
        # A resumed run leaves tasks already dispatched to their entries; it only sends what never went out.
        to_send = {task_id for task_id in pending if task_id not in in_flight}
        await self._dispatcher.store_and_dispatch([(refs[t.task_id], t.xml) for t in tasks if t.task_id in to_send],
                                                  self._settings.common.max_task_retries)
        log.info("group dispatched", extra={"fields": {
            "tasks": len(tasks), "sent": len(to_send), "done": len(done), "inFlight": len(pending) - len(to_send)}})
        await self._await_group(tracker, refs, group_index)
        results = await self._read_results(group_index, ids)
        await asyncio.to_thread(apply_results, root, group_index, results)
        await self._client.hset(group_key, "status", "completed")
        await lifecycle.publish(self._client, lifecycle.new_event(self.request_id, "group_completed", group_index))

    def _ref(self, group_index: int, task: TaskDocument) -> TaskRef:
        return TaskRef(self.request_id, group_index, task.group_name, task.task_id, task.valuation_name,
                       self.trace_id)

    async def _await_group(self, tracker: GroupTracker, refs: dict[str, TaskRef], group_index: int) -> None:
        retries: set[asyncio.Task[None]] = set()
        try:
            while not tracker.finished:
                for update in await self._read_updates(tracker):
                    if update.group_index == group_index:
                        await self._settle(tracker, refs, update.task_id, tracker.on_update(update), retries)
                now = asyncio.get_running_loop().time()
                for task_id, decision in tracker.expired(now):
                    await self._settle(tracker, refs, task_id, decision, retries)
                for task in [t for t in retries if t.done()]:
                    retries.discard(task)
                    task.result()
        finally:
            for task in retries:
                task.cancel()

    async def _settle(self, tracker: GroupTracker, refs: dict[str, TaskRef], task_id: str, decision: Decision,
                      retries: set[asyncio.Task[None]]) -> None:
        group_key = keys.group_state_key(self.request_id, refs[task_id].group_index)
        if decision is Decision.COMPLETED:
            await self._client.hincrby(group_key, "completed", 1)
        elif decision is Decision.RETRY:
            state = tracker.tasks[task_id]
            log.info("task attempt failed; retrying",
                     extra={"fields": {"taskId": task_id, "attempt": state.attempt, "error": state.last_error}})
            retries.add(asyncio.create_task(self._retry_later(tracker, refs[task_id], state.attempt)))
        elif decision is Decision.EXHAUSTED:
            state = tracker.tasks[task_id]
            await self._client.hset(group_key, mapping={"status": "failed", "failed": 1})
            ref = refs[task_id]
            raise GroupFailed(
                f"task {task_id} of group {ref.group_index} ({ref.group_name}) failed after {state.attempt} "
                f"attempts: {state.last_error}",
                {"group": ref.group_name, "groupIndex": str(ref.group_index), "taskId": task_id,
                 "valuation": ref.valuation_name, "attempts": str(state.attempt),
                 "deliveries": str(state.deliveries_used), "error": state.last_error},
            )

    async def _retry_later(self, tracker: GroupTracker, ref: TaskRef, failed_attempt: int) -> None:
        s = self._settings
        await asyncio.sleep(backoff_seconds(failed_attempt, s.retry_base_ms, s.retry_cap_ms))
        attempt = tracker.begin_retry(ref.task_id, asyncio.get_running_loop().time())
        pipe = self._client.pipeline(transaction=False)
        pipe.hincrby(keys.request_state_key(self.request_id), "retryCount", 1)
        await pipe.execute()
        await self._dispatcher.dispatch([(ref, attempt, tracker.remaining_deliveries(ref.task_id))])

    async def _read_updates(self, tracker: GroupTracker) -> list[streams_pb2.TaskUpdate]:
        """Block on this request's own updates stream until something arrives or a deadline is due."""
        block_ms = self._settings.common.default_block_ms
        deadline = tracker.next_deadline()
        if deadline is not None:
            until = (deadline - asyncio.get_running_loop().time()) * 1000
            block_ms = max(1, min(block_ms, int(until) + 1))
        if any(s.retry_pending for s in tracker.tasks.values()):
            block_ms = min(block_ms, 50)  # a retry is sleeping; look again soon to see it dispatched
        stream = keys.updates_stream(self.request_id)
        reply: Any = await self._client.xread({stream: self._updates_from}, count=1000, block=block_ms)
        updates = []
        for _, entries in reply or []:
            for entry_id, fields in entries:
                self._updates_from = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
                updates.append(from_fields(streams_pb2.TaskUpdate, fields))
        return updates

    async def _stored_results(self, group_index: int, ids: list[str]) -> set[str]:
        """Tasks whose result already exists (a resumed run) do not run again."""
        if not ids:
            return set()
        pipe = self._client.pipeline(transaction=False)
        for task_id in ids:
            pipe.exists(keys.task_result_key(self.request_id, group_index, task_id))
        found = await pipe.execute()
        return {task_id for task_id, exists in zip(ids, found, strict=True) if exists}

    async def _read_results(self, group_index: int, ids: list[str]) -> list[bytes]:
        if not ids:
            return []
        values: list[bytes | None] = await self._client.mget(  # type: ignore[assignment]
            [keys.task_result_key(self.request_id, group_index, i) for i in ids])
        missing = [task_id for task_id, value in zip(ids, values, strict=True) if value is None]
        if missing:
            raise VnError(f"results of group {group_index} are missing for tasks {', '.join(missing[:10])}")
        return [value for value in values if value is not None]

    async def _fail(self, exc: VnError) -> None:
        state = await self._client.hget(keys.request_state_key(self.request_id), "currentGroup")
        detail = json.dumps({"reason": exc.reason, "message": exc.message,
                             "groupIndex": int(state or 0), **exc.metadata})
        await self._client.set(keys.request_failure_key(self.request_id), detail)
        if await lifecycle.finish(self._client, self.request_id, "failed", detail):
            log.warning("request failed", extra={"fields": {"reason": exc.reason, "error": exc.message}})
        await self._retire()

    async def _retire(self) -> None:
        await expire_request(self._client, self.request_id, self._task_counts,
                             self._settings.common.request_ttl_seconds)

