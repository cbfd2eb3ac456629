"""The console's workers page: consumers of the task stream, their in-flight tasks, backlogs, dead letters."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis.asyncio as redis

from vn.v1 import console_pb2
from vnapi.console_queries import _bounded
from vncommon import keys
from vncommon.streams import text

DEFAULT_DEAD_LETTERS = 50
MAX_DEAD_LETTERS = 500
LIVE_MARGIN_MS = 1_000
MAX_IN_FLIGHT = 1_000  # entries listed on the page; the counts cover all of them


def watched_streams(layouts: Sequence[int]) -> list[tuple[str, str]]:
    """(stream, consumer group) of every stream the mesh reads with a group: each shard (STREAM_SHARDS)."""
    return ([(stream, keys.DISPATCH_GROUP) for stream in keys.all_dispatch_streams(layouts)]
            + [(stream, keys.INGEST_GROUP) for stream in keys.ingest_streams(layouts)])


def _str(info: dict[Any, Any], name: str) -> str:
    value = info.get(name, info.get(name.encode(), ""))
    return text(value) if isinstance(value, bytes | str) else str(value if value is not None else "")


def _num(info: dict[Any, Any], name: str, default: int = 0) -> int:
    value = info.get(name, info.get(name.encode()))
    try:
        return int(value) if value is not None else default
    except (TypeError, ValueError):
        return default


class WorkersView:
    def __init__(self, client: redis.Redis, block_ms: int, layouts: Sequence[int] = (1,)) -> None:
        self._client = client
        self._streams = watched_streams(layouts)
        self._dispatch = keys.all_dispatch_streams(layouts)
        # An idle worker still reads once per block period; one silent for two of them is gone (or stuck).
        self._live_idle_ms = 2 * block_ms + LIVE_MARGIN_MS

    async def workers(self, request: console_pb2.GetWorkersRequest) -> console_pb2.GetWorkersResponse:
        count = _bounded(request.dead_letters, DEFAULT_DEAD_LETTERS, MAX_DEAD_LETTERS, "dead_letters")
        response = console_pb2.GetWorkersResponse()
        for stream, group in self._streams:
            response.streams.append(await self._backlog(stream, group))
        for dispatch in self._dispatch:
            response.consumers.extend(await self._consumers(dispatch))
            response.in_flight.extend(await self._in_flight(dispatch))
            letters_stream = keys.deadletter_stream(dispatch)
            response.dead_letters_total += int(await self._client.xlen(letters_stream))
            letters: Any = await self._client.xrevrange(letters_stream, count=count)
            for entry_id, fields in letters:
                response.dead_letters.append(_dead_letter(text(entry_id),
                                                          {text(k): text(v) for k, v in fields.items()}))
        return response

    async def _backlog(self, stream: str, group: str) -> console_pb2.StreamBacklog:
        backlog = console_pb2.StreamBacklog(stream=stream, group=group, lag=-1)
        if not await self._client.exists(stream):
            return backlog
        backlog.length = int(await self._client.xlen(stream))
        groups: list[Any] = await self._client.xinfo_groups(stream)
        info = next((g for g in groups if _str(g, "name") == group), None)
        if info is None:
            return backlog
        backlog.consumers = _num(info, "consumers")
        backlog.pending = _num(info, "pending")
        backlog.lag = _num(info, "lag", -1)
        if backlog.pending:
            entries: list[Any] = await self._client.xpending_range(stream, group, "-", "+", MAX_IN_FLIGHT)
            backlog.reclaimed = sum(1 for e in entries if _num(e, "times_delivered") > 1)
        return backlog

    async def _consumers(self, dispatch: str) -> list[console_pb2.WorkerConsumer]:
        if not await self._client.exists(dispatch):
            return []
        try:
            rows: list[Any] = await self._client.xinfo_consumers(dispatch, keys.DISPATCH_GROUP)
        except redis.ResponseError:  # no consumer group yet: no worker has started
            return []
        return [console_pb2.WorkerConsumer(name=_str(r, "name"), pending=_num(r, "pending"), idle_ms=_num(r, "idle"),
                                           inactive_ms=max(_num(r, "inactive", -1), 0),
                                           live=self._live(r)) for r in rows]

    def _live(self, row: dict[Any, Any]) -> bool:
        # Redis 7.2+ reports `inactive` (since the last successful read); older ones only `idle`, which an
        # empty blocking read does not reset, so a waiting worker there looks quiet.
        return _num(row, "inactive", _num(row, "idle")) <= self._live_idle_ms

    async def _in_flight(self, dispatch: str) -> list[console_pb2.InFlightTask]:
        try:
            entries: list[Any] = await self._client.xpending_range(
                dispatch, keys.DISPATCH_GROUP, "-", "+", MAX_IN_FLIGHT)
        except redis.ResponseError:
            return []
        if not entries:
            return []
        pipe = self._client.pipeline(transaction=False)
        for entry in entries:
            entry_id = text(entry["message_id"])
            pipe.xrange(dispatch, entry_id, entry_id)
        bodies: list[Any] = await pipe.execute()
        tasks = []
        for entry, body in zip(entries, bodies, strict=True):
            fields = {text(k): text(v) for k, v in body[0][1].items()} if body else {}
            tasks.append(console_pb2.InFlightTask(
                consumer=text(entry["consumer"]), entry_id=text(entry["message_id"]),
                request_id=fields.get("requestId", ""), group_index=_num(fields, "groupIndex"),
                task_id=fields.get("taskId", ""), attempt=_num(fields, "attempt", 1),
                deliveries=_num(entry, "times_delivered"), idle_ms=_num(entry, "time_since_delivered")))
        return tasks


def _dead_letter(entry_id: str, fields: dict[str, str]) -> console_pb2.DeadLetter:
    return console_pb2.DeadLetter(
        entry_id=entry_id, request_id=fields.get("requestId", ""), group_index=_num(fields, "groupIndex"),
        task_id=fields.get("taskId", ""), consumer=fields.get("consumer", ""), deliveries=_num(fields, "deliveries"),
        error=fields.get("error", ""), dead_lettered_at=fields.get("deadLetteredAt", ""), fields=fields)
