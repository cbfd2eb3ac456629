"""What the web console needs that the mesh does not keep for itself: the one module that writes it.

Two records, both bounded and both gone with the request's data:
- the recent-request index (`keys.RECENT_REQUESTS`): a sorted set of ids scored by submission time,
  trimmed to `keys.RECENT_REQUESTS_MAX` ids and to the request TTL on every TRIM_EVERY-th write of each
  writer (so it holds at most TRIM_EVERY - 1 more ids per writer; ids of purged requests are skipped);
- each group's task attempts (`keys.task_attempts_key`): one hash field per task with its latest attempt,
  plus one `<taskId>!error` field holding the error of its latest failed attempt; the hash carries the
  request TTL from its last write (less at most a minute: a writer refreshes it at most once a minute).

Writers add commands to a pipeline they already send, so recording costs no extra round trip.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vn.v1 import streams_pb2
from vncommon import keys
from vncommon.state import TaskStatus
from vncommon.streams import text

ERROR_SUFFIX = "!error"
ERROR_MAX_CHARS = 500  # the console shows the start of an error; the full text is in the failure detail


TRIM_EVERY = 16  # index writes per trim of the index (per writer): the bound is exceeded by fewer ids


def queue_submitted(pipe: Any, request_id: str, submitted_ms: int, ttl_seconds: int, trim: bool = True) -> None:
    """Index a new request; when `trim`, drop ids older than the TTL and all but the newest
    RECENT_REQUESTS_MAX (a writer trims every TRIM_EVERY writes: see `Trimming`)."""
    pipe.zadd(keys.RECENT_REQUESTS, {request_id: submitted_ms})
    if not trim:
        return
    pipe.zremrangebyscore(keys.RECENT_REQUESTS, "-inf", f"({submitted_ms - ttl_seconds * 1000}")
    pipe.zremrangebyrank(keys.RECENT_REQUESTS, 0, -keys.RECENT_REQUESTS_MAX - 1)


class Trimming:
    """Says which of a writer's index writes also trims the index: the first and every TRIM_EVERY-th."""

    def __init__(self) -> None:
        self._writes = 0

    def due(self) -> bool:
        self._writes += 1
        return self._writes % TRIM_EVERY == 1


def queue_task_attempts(pipe: Any, updates: list[streams_pb2.TaskUpdate], worker: str, ttl_seconds: int,
                        needs_ttl: Callable[[str], bool] = lambda key: True) -> list[str]:
    """Record the attempts a worker settled, one HSET per group, and an EXPIRE for each hash `needs_ttl`
    (by default all); returns the keys given an EXPIRE."""
    by_key: dict[str, dict[Any, Any]] = {}
    for update in updates:
        record = json.dumps({"s": update.status, "a": update.attempt, "ms": update.duration_ms, "w": worker},
                            separators=(",", ":"))
        mapping = by_key.setdefault(keys.task_attempts_key(update.request_id, update.group_index), {})
        mapping[update.task_id] = record
        if update.status == TaskStatus.FAILED:
            mapping[update.task_id + ERROR_SUFFIX] = update.error[:ERROR_MAX_CHARS]
    expired = []
    for key, mapping in by_key.items():
        pipe.hset(key, mapping=mapping)
        if needs_ttl(key):
            pipe.expire(key, ttl_seconds)
            expired.append(key)
    return expired


class TtlMemo:
    """Which attempts hashes this writer gave their TTL lately: a hash keeps the TTL it was given while more
    fields are written, so a writer refreshes it at most every `refresh_s` instead of on every write. The
    hash then lives at least the TTL less `refresh_s` past its last write."""

    MAX_KEYS = 4096

    def __init__(self, ttl_seconds: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.refresh_s = min(60.0, ttl_seconds / 10)
        self._clock = clock
        self._set_at: dict[str, float] = {}

    def needs_ttl(self, key: str) -> bool:
        set_at = self._set_at.get(key)
        return set_at is None or self._clock() - set_at >= self.refresh_s

    def given(self, keys_given: list[str]) -> None:
        """Record the keys whose EXPIRE Redis carried out."""
        now = self._clock()
        if len(self._set_at) >= self.MAX_KEYS:
            self._set_at = {key: at for key, at in self._set_at.items() if now - at < self.refresh_s}
            if len(self._set_at) >= self.MAX_KEYS:  # all recent: forget them (they get their TTL once more)
                self._set_at = {}
        for key in keys_given:
            self._set_at[key] = now


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

