"""GET /valuation/{requestId}/events: a request's lifecycle events as server-sent events.

The same events as gRPC Watch, from the first, each with `id: <sequence>`; a client reconnecting with
`Last-Event-ID: n` gets the events after n. While a group runs, `progress` events (without an id, so
they never move the resume point) carry its tasks completed / expected. Comment lines keep idle
connections open through proxies. The stream ends after the terminal event.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from gateway.middleware import CLIENT, SETTINGS, TRACE_ID
from vn.v1 import streams_pb2, valuation_pb2
from vnclient import ValuationClient, event_to_dict
from vncommon.errors import InvalidArgument
from vncommon.state import TERMINAL_PROTO, Status, is_terminal
from vncommon.trace import TRACE_HEADER

EVENT_STREAM = "text/event-stream"
LAST_EVENT_ID = "Last-Event-ID"
LAST_EVENT_ID_DIGITS = 6  # far more events than any request has


def last_event_id(raw: str | None) -> int:
    """The sequence to resume after; 0 (from the first) when absent; InvalidArgument when not a number."""
    if raw is None or not raw.strip():
        return 0
    if not raw.strip().isdigit() or len(raw.strip()) > LAST_EVENT_ID_DIGITS:
        raise InvalidArgument(f"{LAST_EVENT_ID} must be an event id sent by this stream (a number)",
                              {"field": LAST_EVENT_ID})
    return int(raw)


def format_event(name: str, data: dict[str, Any], event_id: int | None = None) -> bytes:
    lines = [f"event: {name}"]
    if event_id is not None:
        lines.append(f"id: {event_id}")
    lines.append("data: " + json.dumps(data, separators=(",", ":")))
    return ("\n".join(lines) + "\n\n").encode()


def progress_data(status: valuation_pb2.GetStatusResponse) -> dict[str, Any]:
    return {"requestId": status.request_id, "groupIndex": status.current_group, "groupCount": status.group_count,
            "groupsCompleted": status.progress.groups_completed, "tasksExpected": status.progress.tasks_expected,
            "tasksCompleted": status.progress.tasks_completed, "tasksFailed": status.progress.tasks_failed}


async def _pump(client: ValuationClient, request_id: str, queue: asyncio.Queue[Any]) -> None:
    try:
        async for event in client.watch(request_id):
            await queue.put(event)
    except Exception as exc:  # the reader reports it; the stream then ends
        await queue.put(exc)
    await queue.put(None)


async def event_stream(client: ValuationClient, request_id: str, after: int, heartbeat_s: float,
                       progress_s: float, call_timeout_s: float) -> AsyncIterator[bytes]:
    """The encoded stream: lifecycle events after `after`, progress while running, heartbeats."""
    queue: asyncio.Queue[Any] = asyncio.Queue()
    pump = asyncio.create_task(_pump(client, request_id, queue), name=f"sse-{request_id}")
    loop = asyncio.get_running_loop()
    next_beat = loop.time() + heartbeat_s
    next_progress = loop.time()
    last_progress: dict[str, Any] | None = None
    running = False
    try:
        while True:
            wake = min(next_beat, next_progress) if running else next_beat
            try:
                item = await asyncio.wait_for(queue.get(), max(0.0, wake - loop.time()))
            except TimeoutError:
                item = False
            if item is None:
                return
            if isinstance(item, Exception):
                yield format_event("error", {"message": "the event stream was interrupted; reconnect to resume"})
                return
            if isinstance(item, streams_pb2.LifecycleEvent):
                running = item.status in (Status.STARTED, Status.GROUP_STARTED, Status.GROUP_COMPLETED)
                if item.sequence > after:
                    yield format_event(item.status, event_to_dict(item), item.sequence)
                if is_terminal(item.status):
                    return
                next_progress = loop.time()
                continue
            now = loop.time()
            if running and now >= next_progress:
                next_progress = now + progress_s
                status = await client.status(request_id, timeout=call_timeout_s)
                data = progress_data(status)
                if data != last_progress and status.status not in TERMINAL_PROTO:
                    last_progress = data
                    yield format_event("progress", data)
            if now >= next_beat:
                next_beat = now + heartbeat_s
                yield b": keep-alive\n\n"
    finally:
        pump.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await pump


async def events(request: web.Request) -> web.StreamResponse:
    """GET /valuation/{requestId}/events."""
    request_id = request.match_info["requestId"]
    settings = request.app[SETTINGS]
    after = last_event_id(request.headers.get(LAST_EVENT_ID))
    client = request.app[CLIENT]
    await client.status(request_id, timeout=settings.call_timeout_s)  # 404 / 410 before the stream starts
    response = web.StreamResponse(headers={
        "Content-Type": EVENT_STREAM, "Cache-Control": "no-cache", "X-Accel-Buffering": "no",
        TRACE_HEADER: request[TRACE_ID]})
    await response.prepare(request)
    async for chunk in event_stream(client, request_id, after, settings.sse_heartbeat_ms / 1000,
                                    settings.sse_progress_ms / 1000, settings.call_timeout_s):
        await response.write(chunk)
    await response.write_eof()
    return response
