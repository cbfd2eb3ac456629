"""What a task is and what running it produced: the types every executor, the worker loop and the
TaskService share (so none of them imports another to get them)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class TaskContext:
    """Who a task is: the fields of its dispatch entry that scripts and logs see."""

    request_id: str
    group_index: int
    task_id: str
    attempt: int = 1
    valuation_name: str = ""
    trace_id: str = ""

    def log_fields(self) -> dict[str, Any]:
        return {"requestId": self.request_id, "groupIndex": self.group_index, "taskId": self.task_id,
                "traceId": self.trace_id or None, "attempt": self.attempt}


@dataclass(frozen=True, slots=True)
class TaskOutcome:
    """What one attempt produced; a failed attempt is an outcome, never an exception."""

    completed: bool
    result_xml: bytes = b""
    duration_ms: int = 0
    error: str = ""

    @classmethod
    def failed(cls, error: str, duration_ms: int = 0) -> TaskOutcome:
        return cls(completed=False, duration_ms=duration_ms, error=error)


class TaskFailed(Exception):
    """One attempt failed; the message is the error reported on the update stream."""


def elapsed_ms(started: float) -> int:
    """Milliseconds since `started` (a `time.monotonic()` reading)."""
    return int((time.monotonic() - started) * 1000)
