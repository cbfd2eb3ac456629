"""Plain-JSON views of vnapi messages, shared by the `vn` command and the REST gateway."""

from __future__ import annotations

import json
from datetime import UTC
from typing import Any

from google.protobuf import timestamp_pb2

from vn.v1 import streams_pb2, valuation_pb2
from vncommon.state import TERMINAL, is_group_event, priority_from_proto, status_to_json

TERMINAL_EVENTS = TERMINAL  # the SDK's name for the terminal lifecycle statuses


def status_name(status: int) -> str:
    """The lower-case word of a RequestStatus (`unknown` for UNSPECIFIED)."""
    return status_to_json(status)


def parse_detail(raw: str) -> Any:
    """A failure detail as a JSON object when it is one; otherwise the text as sent."""
    try:
        value = json.loads(raw)
    except ValueError:
        return raw
    return value if isinstance(value, dict) else raw


def timestamp_iso(message: Any, field: str) -> str | None:
    """ISO 8601 UTC (milliseconds, `Z`) of a Timestamp field, or None when it is unset."""
    if not message.HasField(field):
        return None
    stamp: timestamp_pb2.Timestamp = getattr(message, field)
    if stamp.seconds == 0 and stamp.nanos == 0:
        return None
    moment = stamp.ToDatetime(tzinfo=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def status_to_dict(response: valuation_pb2.GetStatusResponse) -> dict[str, Any]:
    """The status document of SPEC section 4 (absent times are None)."""
    progress = response.progress
    body: dict[str, Any] = {
        "requestId": response.request_id,
        "status": status_name(response.status),
        "currentGroup": response.current_group,
        "groupCount": response.group_count,
        "receivedAt": timestamp_iso(response, "received_at"),
        "startedAt": timestamp_iso(response, "started_at"),
        "completedAt": timestamp_iso(response, "completed_at"),
        "priority": str(priority_from_proto(response.priority)),
        "deadlineAt": timestamp_iso(response, "deadline_at"),
        "progress": {
            "groupsCompleted": progress.groups_completed,
            "tasksExpected": progress.tasks_expected,
            "tasksCompleted": progress.tasks_completed,
            "tasksFailed": progress.tasks_failed,
        },
    }
    if response.failure_detail:
        body["detail"] = parse_detail(response.failure_detail)
    return body


def event_to_dict(event: streams_pb2.LifecycleEvent) -> dict[str, Any]:
    """One lifecycle event; groupIndex and detail only when they apply."""
    body: dict[str, Any] = {
        "requestId": event.request_id,
        "sequence": event.sequence,
        "status": event.status,
        "timestamp": event.timestamp,
    }
    if event.group_index >= 0 and is_group_event(event.status):
        body["groupIndex"] = event.group_index
    if event.detail:
        body["detail"] = parse_detail(event.detail)
    return body


def event_line(event: streams_pb2.LifecycleEvent) -> str:
    """A one-line human view: `<timestamp> <status> [group=<g>] [detail=<json>]`."""
    parts = [event.timestamp or "-", event.status]
    if event.group_index >= 0 and is_group_event(event.status):
        parts.append(f"group={event.group_index}")
    if event.detail:
        parts.append(f"detail={json.dumps(parse_detail(event.detail), separators=(',', ':'))}")
    return " ".join(parts)
