"""Reading a request back: status, results and failure detail (SPEC sections 4 and 6)."""

from __future__ import annotations

import logging
from typing import Any, NoReturn

import redis.asyncio as redis

from vn.v1 import valuation_pb2
from vncommon import keys
from vncommon.errors import (
    InvalidArgument,
    RequestCancelled,
    RequestExpired,
    RequestFailed,
    RequestNotFound,
    ResultNotReady,
    VnError,
)
from vncommon.requestid import is_request_id
from vncommon.state import GROUP_HASH, REQUEST_HASH, GroupStatus, Status, priority_to_proto, status_to_proto
from vncommon.streams import text
from vncommon.timeutil import parse_iso

log = logging.getLogger(__name__)



def check_request_id(request_id: str, strict: bool = False) -> None:
    """An empty id is INVALID_ARGUMENT. One that could not be an id is unknown without a Redis round trip
    (NOT_FOUND), or, `strict` (calls that change a request), the caller's mistake, named (INVALID_ARGUMENT)."""
    if not request_id:
        raise InvalidArgument("request_id is required", {"field": "request_id"})
    if is_request_id(request_id):
        return
    if strict:
        raise InvalidArgument("request_id must be 1-64 letters, digits, '-' or '_'", {"field": "request_id"})
    raise RequestNotFound(f"no request {request_id!r}", {"requestId": request_id})


class Queries:
    """Read-only views of a request's Redis state."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client

    async def state(self, request_id: str) -> dict[str, str]:
        """The request's state hash; RequestExpired after purge, RequestNotFound if never known."""
        check_request_id(request_id)
        raw = await self._client.hgetall(keys.request_state_key(request_id))
        if not raw:
            await self.raise_missing(request_id)
        return {text(k): text(v) for k, v in raw.items()}

    async def raise_missing(self, request_id: str) -> NoReturn:
        if await self._client.exists(keys.tombstone_key(request_id)):
            raise RequestExpired(f"request {request_id} has expired and its data was purged",
                                 {"requestId": request_id})
        raise RequestNotFound(f"no request {request_id!r}", {"requestId": request_id})

    async def status(self, request_id: str) -> valuation_pb2.GetStatusResponse:
        """GetStatus: state hash and the current group's counters."""
        state = await self.state(request_id)
        name = state.get(REQUEST_HASH.status, "")
        current = _int(state.get(REQUEST_HASH.current_group))
        group_count = _int(state.get(REQUEST_HASH.group_count))
        group = await self._group(request_id, current)
        response = valuation_pb2.GetStatusResponse(
            request_id=request_id, status=status_to_proto(name), current_group=current, group_count=group_count
        )
        _set_time(response.received_at, state.get(REQUEST_HASH.received_at))
        _set_time(response.started_at, state.get(REQUEST_HASH.started_at))
        _set_time(response.completed_at, state.get(REQUEST_HASH.completed_at))
        response.priority = priority_to_proto(state.get(REQUEST_HASH.priority))
        deadline_ms = _int(state.get(REQUEST_HASH.deadline_at_ms))
        if deadline_ms:
            response.deadline_at.FromMilliseconds(deadline_ms)
        completed = (group_count if name == Status.SUCCEEDED
                     else current + (group.get(GROUP_HASH.status) == GroupStatus.COMPLETED))
        response.progress.groups_completed = min(completed, group_count) if group_count else completed
        response.progress.tasks_expected = _int(group.get(GROUP_HASH.expected))
        response.progress.tasks_completed = _int(group.get(GROUP_HASH.completed))
        response.progress.tasks_failed = _int(group.get(GROUP_HASH.failed))
        if name in (Status.FAILED, Status.CANCELLED):
            response.failure_detail = await self.failure_detail(request_id)
        return response

    async def _group(self, request_id: str, group_index: int) -> dict[str, str]:
        raw = await self._client.hgetall(keys.group_state_key(request_id, group_index))
        return {text(k): text(v) for k, v in raw.items()}

    async def failure_detail(self, request_id: str) -> str:
        raw = await self._client.get(keys.request_failure_key(request_id))
        return text(raw) if raw is not None else ""

    async def results(self, request_id: str) -> bytes:
        """GetResults: the response bytes of a succeeded request, else the error saying why not."""
        state = await self.state(request_id)
        return await self.results_for(request_id, state)

    async def results_for(self, request_id: str, state: dict[str, str]) -> bytes:
        status = state.get(REQUEST_HASH.status, "")
        if status == Status.FAILED:
            detail = await self.failure_detail(request_id)
            raise RequestFailed(f"request {request_id} failed", {"requestId": request_id, "detail": detail})
        if status == Status.CANCELLED:
            detail = await self.failure_detail(request_id)
            raise RequestCancelled(f"request {request_id} was cancelled", {"requestId": request_id, "detail": detail})
        if status != Status.SUCCEEDED:
            raise ResultNotReady(f"request {request_id} has not finished", {"requestId": request_id,
                                                                             "status": status})
        response_key = state.get(REQUEST_HASH.response_key) or keys.request_response_key(request_id)
        body = await self._client.get(response_key)
        if body is None:
            if await self._client.exists(keys.tombstone_key(request_id)):
                await self.raise_missing(request_id)
            raise VnError(f"request {request_id} succeeded but its response is missing")
        return bytes(body) if not isinstance(body, str) else body.encode()


def _set_time(field: Any, raw: str | None) -> None:
    """Leave the Timestamp unset (null over REST) when the time is not known yet."""
    if not raw:
        return
    try:
        field.FromDatetime(parse_iso(raw))
    except ValueError:
        log.warning("unreadable timestamp in request state", extra={"fields": {"value": raw}})


def _int(raw: str | None) -> int:
    try:
        return max(int(raw or 0), 0)
    except ValueError:
        return 0
