"""What the web console needs that the mesh does not keep for itself: the one module that writes it.

Two records, both bounded and both gone with the request's data:
- the recent-request index (`keys.RECENT_REQUESTS`): a sorted set of ids scored by submission time,
  trimmed on every write to `keys.RECENT_REQUESTS_MAX` ids and to the request TTL;
- each group's task attempts (`keys.task_attempts_key`): one hash field per task with its latest attempt,
  plus one `<taskId>!error` field holding the error of its latest failed attempt; the hash carries the
  request TTL from its last write.

Writers add commands to a pipeline they already send, so recording costs no extra round trip.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from vn.v1 import streams_pb2
from vncommon import keys
from vncommon.state import TaskStatus
from vncommon.streams import text

ERROR_SUFFIX = "!error"
ERROR_MAX_CHARS = 500  # the console shows the start of an error; the full text is in the failure detail


def queue_submitted(pipe: Any, request_id: str, submitted_ms: int, ttl_seconds: int) -> None:
    """Index a new request; drop ids older than the TTL and all but the newest RECENT_REQUESTS_MAX."""
    pipe.zadd(keys.RECENT_REQUESTS, {request_id: submitted_ms})
    pipe.zremrangebyscore(keys.RECENT_REQUESTS, "-inf", f"({submitted_ms - ttl_seconds * 1000}")
    pipe.zremrangebyrank(keys.RECENT_REQUESTS, 0, -keys.RECENT_REQUESTS_MAX - 1)


def queue_task_attempts(pipe: Any, updates: list[streams_pb2.TaskUpdate], worker: str, ttl_seconds: int) -> int:
    """Record the attempts a worker settled, one HSET and one EXPIRE per group; returns the commands added."""
    by_key: dict[str, dict[Any, Any]] = {}
    for update in updates:
        record = json.dumps({"s": update.status, "a": update.attempt, "ms": update.duration_ms, "w": worker},
                            separators=(",", ":"))
        mapping = by_key.setdefault(keys.task_attempts_key(update.request_id, update.group_index), {})
        mapping[update.task_id] = record
        if update.status == TaskStatus.FAILED:
            mapping[update.task_id + ERROR_SUFFIX] = update.error[:ERROR_MAX_CHARS]
    for key, mapping in by_key.items():
        pipe.hset(key, mapping=mapping)
        pipe.expire(key, ttl_seconds)
    return 2 * len(by_key)


@dataclass(frozen=True, slots=True)
class TaskRecord:
    task_id: str
    status: str
    attempt: int
    duration_ms: int
    worker: str
    error: str


def parse_attempts(raw: dict[Any, Any]) -> list[TaskRecord]:
    """The records of one group's attempts hash (as read by HGETALL); unreadable fields are skipped."""
    fields = {text(k): text(v) for k, v in raw.items()}
    records = []
    for task_id, value in fields.items():
        if task_id.endswith(ERROR_SUFFIX):
            continue
        try:
            data = json.loads(value)
            records.append(TaskRecord(task_id, str(data["s"]), int(data["a"]), int(data["ms"]), str(data["w"]),
                                      fields.get(task_id + ERROR_SUFFIX, "")))
        except (ValueError, KeyError, TypeError):
            continue
    return records

