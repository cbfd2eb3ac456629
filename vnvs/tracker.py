"""The bookkeeping of one running group: which task is on which attempt, what is done, what to retry.

Pure state, no I/O, so the retry and duplicate rules are easy to read and to test. Its cost per loop of
the run does not grow with the group: wait deadlines are kept in dispatch order (they all add the same
timeout to a clock that only moves forward) and retries in a heap, both cleaned lazily, so finding what
expired or is due next touches only those entries, not all 100,000 tasks of a large group.
"""

from __future__ import annotations

import heapq
import random
from collections import deque
from dataclasses import dataclass, field
from enum import Enum, auto

from vn.v1 import streams_pb2
from vncommon.state import TaskStatus


class Decision(Enum):
    IGNORE = auto()       # duplicate or stale update
    COMPLETED = auto()    # first success of this task
    RETRY = auto()        # failed attempt; dispatch attempt+1 after a backoff
    EXHAUSTED = auto()    # failed on the last allowed attempt: the group fails


@dataclass(slots=True)
class TaskState:
    attempt: int = 1
    deliveries_used: int = 0  # by failed attempts; a worker crash costs a delivery too
    deadline: float = 0.0
    done: bool = False
    last_error: str = ""
    retry_pending: bool = False
    retry_at: float = 0.0
    queued: bool = False  # not dispatched yet: waits for room in the request's window


@dataclass(slots=True)
class GroupTracker:
    task_ids: list[str]
    max_attempts: int
    wait_timeout_s: float
    tasks: dict[str, TaskState] = field(default_factory=dict)
    completed: int = 0
    queued: int = 0
    # (deadline, task) in the order the deadlines were set, so in time order; stale ones are skipped.
    _deadlines: deque[tuple[float, str]] = field(default_factory=deque)
    _retries: list[tuple[float, str]] = field(default_factory=list)  # heap of (retry_at, task)

    def start(self, now: float, done: set[str], attempts: dict[str, int] | None = None) -> list[str]:
        """Mark resumed tasks done; return the ids still to dispatch, each with a fresh deadline."""
        pending, attempts = [], attempts or {}
        for task_id in self.task_ids:
            state = TaskState(attempts.get(task_id, 1))
            state.done = task_id in done
            self.tasks[task_id] = state
            if state.done:
                self.completed += 1
            else:
                self._set_deadline(task_id, state, now)
                pending.append(task_id)
        return pending

    def _set_deadline(self, task_id: str, state: TaskState, now: float) -> None:
        state.deadline = now + self.wait_timeout_s
        self._deadlines.append((state.deadline, task_id))

    def _timed(self, deadline: float, task_id: str) -> TaskState | None:
        """The task if this deadline is still its live wait deadline."""
        state = self.tasks[task_id]
        live = not state.done and not state.retry_pending and not state.queued and state.deadline == deadline
        return state if live else None

    def _waiting_retry(self, retry_at: float, task_id: str) -> bool:
        state = self.tasks[task_id]
        return state.retry_pending and not state.done and state.retry_at == retry_at

    @property
    def finished(self) -> bool:
        return self.completed == len(self.task_ids)

    @property
    def outstanding(self) -> int:
        """Tasks dispatched and not done: in a stream, running, or waiting for their retry."""
        return len(self.task_ids) - self.completed - self.queued

    def hold(self, task_ids: list[str]) -> None:
        """These tasks wait for room in the request's window: no wait timeout runs for them yet."""
        for task_id in task_ids:
            state = self.tasks[task_id]
            state.queued, state.deadline = True, float("inf")
        self.queued += len(task_ids)

    def release(self, task_ids: list[str], now: float) -> None:
        """These held tasks are dispatched now: their wait timeout starts."""
        for task_id in task_ids:
            state = self.tasks[task_id]
            state.queued = False
            self._set_deadline(task_id, state, now)
        self.queued -= len(task_ids)

    def on_update(self, update: streams_pb2.TaskUpdate) -> Decision:
        state = self.tasks.get(update.task_id)
        if state is None or state.done:
            return Decision.IGNORE
        if update.status == TaskStatus.COMPLETED:
            # A held task can complete only through an entry an earlier run sent but did not record.
            self.queued -= state.queued
            state.done, state.queued = True, False
            self.completed += 1
            return Decision.COMPLETED
        if state.queued:
            return Decision.IGNORE
        if update.attempt != state.attempt or state.retry_pending:
            return Decision.IGNORE  # an older attempt's late failure; the newer attempt is in flight
        return self._failed(state, update.error or "task failed without an error message", update.deliveries)

    def expired(self, now: float) -> list[tuple[str, Decision]]:
        """Tasks that sent nothing within TASK_WAIT_TIMEOUT_MS count as failed attempts."""
        decisions = []
        error = f"no update within {self.wait_timeout_s * 1000:.0f} ms (TASK_WAIT_TIMEOUT_MS)"
        while self._deadlines and self._deadlines[0][0] <= now:
            deadline, task_id = self._deadlines.popleft()
            state = self._timed(deadline, task_id)
            if state is not None:
                decisions.append((task_id, self._failed(state, error)))
        return decisions

    def next_deadline(self) -> float | None:
        """When the loop must wake up next: a task's wait timeout or a scheduled retry."""
        while self._deadlines and self._timed(*self._deadlines[0]) is None:
            self._deadlines.popleft()
        while self._retries and not self._waiting_retry(*self._retries[0]):
            heapq.heappop(self._retries)
        times = [queue[0][0] for queue in (self._deadlines, self._retries) if queue]
        return min(times) if times else None

    def schedule_retry(self, task_id: str, at: float) -> None:
        self.tasks[task_id].retry_at = at
        heapq.heappush(self._retries, (at, task_id))

    def due_retries(self, now: float) -> list[str]:
        due = []
        while self._retries and self._retries[0][0] <= now:
            retry_at, task_id = heapq.heappop(self._retries)
            if self._waiting_retry(retry_at, task_id):
                due.append(task_id)
        return due

    def begin_retry(self, task_id: str, now: float) -> int:
        """Called when the retry is dispatched: the task moves to its next attempt."""
        state = self.tasks[task_id]
        state.attempt += 1
        state.retry_pending = False
        self._set_deadline(task_id, state, now)
        return state.attempt

    def remaining_deliveries(self, task_id: str) -> int:
        """The delivery budget the task's next entry carries (MAX_TASK_RETRIES in all, crashes included)."""
        return max(1, self.max_attempts - self.tasks[task_id].deliveries_used)

    def _failed(self, state: TaskState, error: str, deliveries: int = 1) -> Decision:
        state.last_error = error
        state.deliveries_used += max(1, deliveries)
        if state.attempt >= self.max_attempts or state.deliveries_used >= self.max_attempts:
            return Decision.EXHAUSTED
        state.retry_pending = True
        return Decision.RETRY


def backoff_seconds(attempt: int, base_ms: int, cap_ms: int) -> float:
    """Exponential backoff with full jitter in [delay/2, delay] after failed attempt `attempt`."""
    delay_ms = min(cap_ms, base_ms * (2 ** max(0, attempt - 1)))
    return random.uniform(delay_ms / 2, delay_ms) / 1000
