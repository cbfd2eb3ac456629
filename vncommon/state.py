"""The words of a request's state (SPEC sections 5 and 6): the only module that spells them.

Status words of requests, lifecycle events, groups and task updates; the terminal set; the field names
of the state hashes; and the conversions between the words and the protobuf enums, the JSON of the REST
gateway and the `vn` command, and the values read back from hashes and stream entries (bytes unless the
Redis client decodes them). Every other module names these through here, so a word changes in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from vn.v1 import task_pb2, valuation_pb2
from vncommon.streams import text

ProtoStatus = valuation_pb2.RequestStatus
ProtoTaskStatus = task_pb2.TaskOutcomeStatus


class Status(StrEnum):
    """The status of a lifecycle event; a request's own status is one of REQUEST_STATES."""

    RECEIVED = "received"
    STARTED = "started"
    GROUP_STARTED = "group_started"
    GROUP_COMPLETED = "group_completed"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


REQUEST_STATES: Final = (Status.RECEIVED, Status.STARTED, Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)
"""What the `status` field of `state:request:{id}` holds, in lifecycle order."""

TERMINAL: Final = frozenset({Status.SUCCEEDED, Status.FAILED, Status.CANCELLED})
"""The states a request never leaves; exactly one terminal event is published per request. `cancelled`
wins only over a state that is not terminal (the same compare-and-set as the others)."""

GROUP_EVENTS: Final = frozenset({Status.GROUP_STARTED, Status.GROUP_COMPLETED})
"""Lifecycle events that name a group (they carry groupIndex)."""


class GroupStatus(StrEnum):
    """The `status` field of `state:request:{id}:group:<g>`."""

    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


class TaskStatus(StrEnum):
    """How one task attempt ended: the `status` of a `stream:task:updates:{id}` entry."""

    COMPLETED = "completed"
    FAILED = "failed"
    # Not an attempt's outcome: the control entry telling the orchestrator the request was cancelled.
    CANCELLED = "cancelled"


class Priority(StrEnum):
    """The `priority` of a request (`priority` in Submit, `X-Priority` over REST); `normal` by default."""

    HIGH = "high"
    NORMAL = "normal"
    BATCH = "batch"


PRIORITIES: Final = (Priority.HIGH, Priority.NORMAL, Priority.BATCH)
"""Highest first: the order workers prefer."""


class SubmitAnswer(StrEnum):
    """The `status` of a 202 answer to `POST /valuation` (SPEC section 4)."""

    ACCEPTED = "accepted"  # async: stored, not yet looked at
    PENDING = "pending"  # sync: SYNC_WAIT_TIMEOUT_MS passed before the request ended


UNKNOWN: Final = "unknown"
"""The JSON status of REQUEST_STATUS_UNSPECIFIED (or a number this version does not know)."""

UNFINISHED: Final = "running"
"""The JSON status of a result that is not ready when vnapi did not say which state the request is in."""

JSON_STATUSES: Final = (*(str(status) for status in REQUEST_STATES), UNKNOWN)
"""Every status a status document can carry, for the OpenAPI document."""


@dataclass(frozen=True, slots=True)
class RequestHash:
    """Field names of the request state hash `state:request:{id}`."""

    status: str = "status"
    xml_key: str = "xmlKey"
    response_key: str = "responseKey"
    metadata_key: str = "metadataKey"
    group_count: str = "groupCount"
    current_group: str = "currentGroup"
    retry_count: str = "retryCount"
    received_at: str = "receivedAt"
    submitted_at: str = "submittedAt"
    started_at: str = "startedAt"
    completed_at: str = "completedAt"
    trace_id: str = "traceId"
    # Set once the event was published, so a retried step never publishes it twice.
    received_published: str = "receivedPublished"
    started_published: str = "startedPublished"
    # REDIS_MODE=cluster, submissions with an idempotency key: the ingest entry was written (it follows
    # the request's own MULTI there), so a duplicate knows whether it must queue the request itself.
    ingest_queued: str = "ingestQueued"
    # Runs started since the last completed group: the guard against adopting a request forever.
    run_starts: str = "runStarts"
    priority: str = "priority"
    # Epoch milliseconds past which the request is cancelled with reason DEADLINE_EXCEEDED; absent: none.
    deadline_at_ms: str = "deadlineAtMs"


@dataclass(frozen=True, slots=True)
class GroupHash:
    """Field names of a group state hash `state:request:{id}:group:<g>`."""

    expected: str = "expected"
    completed: str = "completed"
    failed: str = "failed"
    status: str = "status"
    started_published: str = "startedPublished"  # `group_started` was published


REQUEST_HASH: Final = RequestHash()
GROUP_HASH: Final = GroupHash()

_PROTO_BY_STATUS: Final[dict[str, ProtoStatus]] = {
    Status.RECEIVED: valuation_pb2.REQUEST_STATUS_RECEIVED,
    Status.STARTED: valuation_pb2.REQUEST_STATUS_STARTED,
    Status.SUCCEEDED: valuation_pb2.REQUEST_STATUS_SUCCEEDED,
    Status.FAILED: valuation_pb2.REQUEST_STATUS_FAILED,
    Status.CANCELLED: valuation_pb2.REQUEST_STATUS_CANCELLED,
}
TERMINAL_PROTO: Final = frozenset(_PROTO_BY_STATUS[status] for status in TERMINAL)
"""TERMINAL as RequestStatus values."""
_STATUS_BY_PROTO: Final[dict[int, Status]] = {proto: Status(word) for word, proto in _PROTO_BY_STATUS.items()}
_PROTO_BY_TASK_STATUS: Final[dict[TaskStatus, ProtoTaskStatus]] = {
    TaskStatus.COMPLETED: task_pb2.TASK_OUTCOME_STATUS_COMPLETED,
    TaskStatus.FAILED: task_pb2.TASK_OUTCOME_STATUS_FAILED,
}
_TASK_STATUS_BY_PROTO: Final[dict[int, TaskStatus]] = {proto: word for word, proto in _PROTO_BY_TASK_STATUS.items()}


def word(raw: bytes | str | None) -> str:
    """A word as read from a hash field or stream entry: text, and "" when the field is absent."""
    return "" if raw is None else text(raw)


def is_terminal(value: bytes | str | None) -> bool:
    """Whether a status (str, or bytes from Redis) is terminal; False for an absent one."""
    return word(value) in TERMINAL


def is_group_event(status: str) -> bool:
    """Whether a lifecycle event's status names a group."""
    return status in GROUP_EVENTS


def parse_status(raw: bytes | str | None) -> Status:
    """The Status of a stored or streamed word; ValueError naming the word if it is none."""
    text = word(raw)
    try:
        return Status(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a request status (one of {', '.join(Status)})") from None


def status_to_proto(value: bytes | str | None) -> ProtoStatus:
    """The RequestStatus of a request state word; UNSPECIFIED for anything else (group events included)."""
    return _PROTO_BY_STATUS.get(word(value), valuation_pb2.REQUEST_STATUS_UNSPECIFIED)


def status_from_proto(value: int) -> Status:
    """The word of a RequestStatus; ValueError for UNSPECIFIED or a number this version does not know."""
    found = _STATUS_BY_PROTO.get(value)
    if found is None:
        raise ValueError(f"RequestStatus {value} has no request state word")
    return found


def status_to_json(value: int) -> str:
    """The JSON status of a RequestStatus: its word, or `unknown` for UNSPECIFIED."""
    found = _STATUS_BY_PROTO.get(value)
    return str(found) if found is not None else UNKNOWN


def status_from_json(value: str) -> ProtoStatus:
    """The RequestStatus of a JSON status (`unknown` and anything unknown: UNSPECIFIED)."""
    return status_to_proto(value)


_PROTO_BY_PRIORITY: Final[dict[Priority, valuation_pb2.Priority]] = {
    Priority.HIGH: valuation_pb2.PRIORITY_HIGH,
    Priority.NORMAL: valuation_pb2.PRIORITY_NORMAL,
    Priority.BATCH: valuation_pb2.PRIORITY_BATCH,
}
_PRIORITY_BY_PROTO: Final[dict[int, Priority]] = {
    valuation_pb2.PRIORITY_UNSPECIFIED: Priority.NORMAL,
    **{proto: word for word, proto in _PROTO_BY_PRIORITY.items()},
}


def priority_from_proto(value: int) -> Priority:
    """The word of a Priority (UNSPECIFIED is normal); ValueError for a number this version does not know."""
    found = _PRIORITY_BY_PROTO.get(value)
    if found is None:
        raise ValueError(f"priority {value} is not one of {', '.join(PRIORITIES)}")
    return found


def priority_to_proto(raw: bytes | str | None) -> valuation_pb2.Priority:
    """The Priority of a stored word; an absent or unknown one is normal (requests stored before priorities)."""
    return _PROTO_BY_PRIORITY.get(parse_priority_or_normal(raw), valuation_pb2.PRIORITY_NORMAL)


def parse_priority(raw: str) -> Priority:
    """The Priority a caller named (case-insensitive); ValueError naming the choices otherwise."""
    try:
        return Priority(raw.strip().lower())
    except ValueError:
        raise ValueError(f"{raw!r} is not a priority (one of {', '.join(PRIORITIES)})") from None


def parse_priority_or_normal(raw: bytes | str | None) -> Priority:
    """A stored priority word; normal when absent or unknown."""
    try:
        return Priority(word(raw))
    except ValueError:
        return Priority.NORMAL


def task_status(completed: bool) -> TaskStatus:
    """The update status of an attempt that completed or not."""
    return TaskStatus.COMPLETED if completed else TaskStatus.FAILED


def task_status_to_proto(status: TaskStatus) -> ProtoTaskStatus:
    return _PROTO_BY_TASK_STATUS[status]


def task_status_from_proto(value: int) -> TaskStatus:
    """The update status of a TaskOutcomeStatus; ValueError for UNSPECIFIED or an unknown number."""
    found = _TASK_STATUS_BY_PROTO.get(value)
    if found is None:
        raise ValueError(f"TaskOutcomeStatus {value} has no task status word")
    return found


def lua_is_terminal(variable: str) -> str:
    """A Lua condition, true when `variable` holds a terminal status: scripts test the same set."""
    return "(" + " or ".join(f"{variable} == '{status}'" for status in sorted(TERMINAL)) + ")"
