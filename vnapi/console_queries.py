"""The console's views of requests: the recent list and one request's groups (read-only, pipelined)."""

from __future__ import annotations

from typing import Any

import redis.asyncio as redis

from vn.v1 import console_pb2
from vnapi.queries import Queries, _int, _set_time
from vncommon import console_records, keys
from vncommon.errors import InvalidArgument
from vncommon.lifecycle import event_from_json
from vncommon.state import (
    GROUP_HASH,
    REQUEST_HASH,
    REQUEST_STATES,
    Status,
    TaskStatus,
    is_terminal,
    parse_priority_or_normal,
    status_to_proto,
)
from vncommon.streams import text

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
DEFAULT_SLOWEST = 10
MAX_SLOWEST = 100
MAX_TROUBLED = 100
SCAN_CHUNK = 500  # index ids read per round trip while a filter is looking for matches
_SUMMARY_FIELDS = (REQUEST_HASH.status, REQUEST_HASH.group_count, REQUEST_HASH.current_group,
                   REQUEST_HASH.received_at, REQUEST_HASH.started_at, REQUEST_HASH.completed_at,
                   REQUEST_HASH.retry_count)


def _bounded(value: int, default: int, maximum: int, name: str) -> int:
    if value == 0:
        return default
    if value > maximum:
        raise InvalidArgument(f"{name} must be at most {maximum}", {"field": name})
    return value


class ConsoleQueries:
    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self._queries = Queries(client)

    async def list_requests(self, request: console_pb2.ListRequestsRequest) -> console_pb2.ListRequestsResponse:
        limit = _bounded(request.limit, DEFAULT_LIMIT, MAX_LIMIT, "limit")
        if request.status and request.status not in REQUEST_STATES:
            raise InvalidArgument(f"status must be one of {', '.join(REQUEST_STATES)}", {"field": "status"})
        indexed = int(await self._client.zcard(keys.RECENT_REQUESTS))
        found: list[tuple[str, dict[str, str]]] = []
        start = 0
        chunk = limit if not (request.status or request.id_contains) else SCAN_CHUNK
        while len(found) < limit and start < indexed:
            members: list[Any] = await self._client.zrevrange(keys.RECENT_REQUESTS, start, start + chunk - 1)
            ids = [text(i) for i in members]
            start += chunk
            if not ids:
                break
            ids = [i for i in ids if request.id_contains in i]
            for request_id, state in zip(ids, await self._states(ids), strict=True):
                if state and (not request.status or state.get(REQUEST_HASH.status) == request.status):
                    found.append((request_id, state))
        found = found[:limit]
        tasks = await self._task_totals(found)
        return console_pb2.ListRequestsResponse(
            requests=[_summary(rid, state, total) for (rid, state), total in zip(found, tasks, strict=True)],
            indexed=indexed)

    async def _states(self, ids: list[str]) -> list[dict[str, str]]:
        pipe = self._client.pipeline(transaction=False)
        for request_id in ids:
            pipe.hmget(keys.request_state_key(request_id), _SUMMARY_FIELDS)
        rows: list[Any] = await pipe.execute() if ids else []
        states = []
        for row in rows:
            state = {name: text(value) for name, value in zip(_SUMMARY_FIELDS, row, strict=True) if value is not None}
            states.append(state if REQUEST_HASH.status in state else {})  # expired since it was indexed
        return states

    async def _task_totals(self, found: list[tuple[str, dict[str, str]]]) -> list[tuple[int, int]]:
        """(tasks expected, tasks completed) over the groups each request has started."""
        pipe = self._client.pipeline(transaction=False)
        spans = []
        for request_id, state in found:
            started = min(_int(state.get(REQUEST_HASH.current_group)) + 1, _int(state.get(REQUEST_HASH.group_count)))
            spans.append(started)
            for group_index in range(started):
                pipe.hmget(keys.group_state_key(request_id, group_index), [GROUP_HASH.expected, GROUP_HASH.completed])
        rows: list[Any] = await pipe.execute() if any(spans) else []
        totals, offset = [], 0
        for span in spans:
            own = rows[offset:offset + span]
            offset += span
            totals.append((sum(_int(r[0]) for r in own), sum(_int(r[1]) for r in own)))
        return totals

    async def request_detail(self, request: console_pb2.GetRequestDetailRequest
                             ) -> console_pb2.GetRequestDetailResponse:
        slowest = _bounded(request.slowest, DEFAULT_SLOWEST, MAX_SLOWEST, "slowest")
        status = await self._queries.status(request.request_id)
        request_id = request.request_id
        state = await self._queries.state(request_id)
        group_count = status.group_count
        pipe = self._client.pipeline(transaction=False)
        pipe.lrange(keys.request_events_key(request_id), 0, -1)
        for group_index in range(group_count):
            pipe.hgetall(keys.group_state_key(request_id, group_index))
            pipe.hgetall(keys.task_attempts_key(request_id, group_index))
        replies: list[Any] = await pipe.execute()
        times = _group_times(request_id, replies[0])
        groups = []
        for group_index in range(group_count):
            group = {text(k): text(v) for k, v in replies[1 + 2 * group_index].items()}
            attempts = console_records.parse_attempts(replies[2 + 2 * group_index])
            groups.append(_group_detail(group_index, group, attempts, times.get(group_index, {}), slowest))
        return console_pb2.GetRequestDetailResponse(
            status=status, groups=groups, retry_count=_int(state.get(REQUEST_HASH.retry_count)),
            priority=parse_priority_or_normal(state.get(REQUEST_HASH.priority)),
            can_cancel=not is_terminal(state.get(REQUEST_HASH.status)))


def _summary(request_id: str, state: dict[str, str], tasks: tuple[int, int]) -> console_pb2.RequestSummary:
    name = state.get(REQUEST_HASH.status, "")
    group_count = _int(state.get(REQUEST_HASH.group_count))
    current = _int(state.get(REQUEST_HASH.current_group))
    done = group_count if name == Status.SUCCEEDED else min(current, group_count)
    priority = parse_priority_or_normal(state.get(REQUEST_HASH.priority))
    summary = console_pb2.RequestSummary(
        request_id=request_id, status=status_to_proto(name), priority=priority, group_count=group_count,
        groups_completed=done, tasks_total=tasks[0], tasks_completed=tasks[1],
        retry_count=_int(state.get(REQUEST_HASH.retry_count)))
    _set_time(summary.received_at, state.get(REQUEST_HASH.received_at))
    _set_time(summary.started_at, state.get(REQUEST_HASH.started_at))
    _set_time(summary.completed_at, state.get(REQUEST_HASH.completed_at))
    return summary


def _group_times(request_id: str, raw_events: list[Any]) -> dict[int, dict[str, str]]:
    """group index -> {"started": iso, "completed": iso} from the request's event list."""
    times: dict[int, dict[str, str]] = {}
    for sequence, raw in enumerate(raw_events, start=1):
        try:
            event = event_from_json(request_id, sequence, raw)
        except (ValueError, KeyError, TypeError):
            continue
        if event.status == Status.GROUP_STARTED:
            times.setdefault(event.group_index, {})["started"] = event.timestamp
        elif event.status == Status.GROUP_COMPLETED:
            times.setdefault(event.group_index, {})["completed"] = event.timestamp
    return times


def _attempt(record: console_records.TaskRecord) -> console_pb2.TaskAttempt:
    return console_pb2.TaskAttempt(task_id=record.task_id, status=record.status, attempt=record.attempt,
                                   duration_ms=record.duration_ms, worker=record.worker, error=record.error)


def _group_detail(group_index: int, group: dict[str, str], attempts: list[console_records.TaskRecord],
                  times: dict[str, str], slowest: int) -> console_pb2.GroupDetail:
    troubled = [r for r in attempts if r.attempt > 1 or r.status == TaskStatus.FAILED or r.error]
    troubled.sort(key=lambda r: (r.status != TaskStatus.FAILED, -r.attempt, r.task_id))
    detail = console_pb2.GroupDetail(
        group_index=group_index, status=group.get(GROUP_HASH.status, ""),
        tasks_expected=_int(group.get(GROUP_HASH.expected)), tasks_completed=_int(group.get(GROUP_HASH.completed)),
        tasks_failed=_int(group.get(GROUP_HASH.failed)), tasks_recorded=len(attempts),
        duration_ms_total=sum(r.duration_ms for r in attempts),
        duration_ms_max=max((r.duration_ms for r in attempts), default=0),
        tasks_retried=sum(r.attempt > 1 for r in attempts),
        slowest=[_attempt(r) for r in sorted(attempts, key=lambda r: -r.duration_ms)[:slowest]],
        troubled=[_attempt(r) for r in troubled[:MAX_TROUBLED]])
    _set_time(detail.started_at, times.get("started"))
    _set_time(detail.completed_at, times.get("completed"))
    return detail
