"""Stopping the tasks of a request cancelled while they run.

Entries of a request cancelled before they start are skipped when fetched (`vnas.stream` reads the
request's status with the batch). For tasks already running, this loop asks Redis every
VNAS_CANCEL_CHECK_MS about the requests whose tasks have run at least that long — one status read per
request, never per task, and none at all while tasks finish faster than the interval — and cancels
their executions: a script's whole process group is killed, an in-process call's result is abandoned.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field

from redis.exceptions import ResponseError

from vnas import metrics
from vnas.stream import DispatchStream
from vnas.task import TaskOutcome
from vncommon.phase import Phase, ShutdownPhase
from vncommon.redisconn import REDIS_ERRORS

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Running:
    started: float
    tasks: set[asyncio.Task[TaskOutcome]] = field(default_factory=set)


class TaskCancelled(Exception):
    """The task's request was cancelled while it ran; the execution was stopped and nothing is settled."""


class CancelWatch:
    def __init__(self, stream: DispatchStream, interval_s: float) -> None:
        self._stream = stream
        self._interval_s = interval_s
        self._running: dict[str, _Running] = {}
        self._stopped: set[asyncio.Task[TaskOutcome]] = set()

    async def execute(self, request_id: str, run: Awaitable[TaskOutcome]) -> TaskOutcome:
        """Run one execution, stoppable by a cancel of its request (TaskCancelled then)."""
        task = asyncio.ensure_future(run)
        running = self._running.setdefault(request_id, _Running(time.monotonic()))
        running.tasks.add(task)
        try:
            return await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if task in self._stopped and not (current is not None and current.cancelling()):
                raise TaskCancelled(request_id) from None
            raise
        finally:
            self._stopped.discard(task)
            running.tasks.discard(task)
            if not running.tasks:
                self._running.pop(request_id, None)

    async def loop(self, phase: ShutdownPhase) -> None:
        """Check the long-running requests each interval until the worker's work is over."""
        while not await phase.sleep(self._interval_s, until=Phase.STOPPED):
            due = time.monotonic() - self._interval_s
            request_ids = [rid for rid, running in self._running.items() if running.started <= due]
            if not request_ids:
                continue
            try:
                cancelled = await self._stream.cancelled_requests(request_ids)
            except (*REDIS_ERRORS, ResponseError) as exc:
                log.warning("could not check running requests for cancellation", extra={"fields": {
                    "error": str(exc)}})
                continue
            for request_id in cancelled:
                self._stop(request_id)

    def _stop(self, request_id: str) -> None:
        running = self._running.get(request_id)
        if running is None:
            return
        for task in running.tasks:
            if not task.done():
                self._stopped.add(task)
                task.cancel()
                metrics.TASKS_SKIPPED.labels(metrics.SKIPPED_RUNNING).inc()
        log.info("stopped the running tasks of a cancelled request", extra={"fields": {
            "requestId": request_id, "tasks": len(running.tasks)}})
