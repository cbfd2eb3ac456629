"""The state vocabulary: the words on the wire, their protobuf and JSON round trips, the terminal set."""

from __future__ import annotations

import dataclasses
import json

import pytest
import redis.asyncio as redis

from vn.v1 import streams_pb2, task_pb2, valuation_pb2
from vncommon import keys, lifecycle, state
from vncommon.state import GROUP_HASH, REQUEST_HASH, GroupStatus, Status, SubmitAnswer, TaskStatus
from vncommon.streams import from_fields, to_fields

# The wire format (SPEC sections 4-6): spelled out here on purpose, so a renamed word fails a test.
REQUEST_PROTO = {
    "received": valuation_pb2.REQUEST_STATUS_RECEIVED,
    "started": valuation_pb2.REQUEST_STATUS_STARTED,
    "succeeded": valuation_pb2.REQUEST_STATUS_SUCCEEDED,
    "failed": valuation_pb2.REQUEST_STATUS_FAILED,
    "cancelled": valuation_pb2.REQUEST_STATUS_CANCELLED,
}
EVENT_WORDS = ["received", "started", "group_started", "group_completed", "succeeded", "failed", "cancelled"]
TERMINAL_WORDS = ("succeeded", "failed", "cancelled")


def test_status_words_are_the_lifecycle_words_of_the_spec() -> None:
    assert [str(status) for status in Status] == EVENT_WORDS
    assert [str(status) for status in state.REQUEST_STATES] == list(REQUEST_PROTO)
    assert {str(s) for s in GroupStatus} == {"running", "completed", "failed"}
    assert {str(s) for s in TaskStatus} == {"completed", "failed", "cancelled"}
    assert [str(p) for p in state.PRIORITIES] == ["high", "normal", "batch"]
    assert {str(s) for s in SubmitAnswer} == {"accepted", "pending"}


def test_state_hash_field_names_are_those_of_the_spec() -> None:
    assert [getattr(REQUEST_HASH, f.name) for f in dataclasses.fields(REQUEST_HASH)] == [
        "status", "xmlKey", "responseKey", "metadataKey", "groupCount", "currentGroup", "retryCount",
        "receivedAt", "submittedAt", "startedAt", "completedAt", "traceId", "receivedPublished",
        "startedPublished", "ingestQueued", "runStarts", "priority", "deadlineAtMs",
    ]
    assert [getattr(GROUP_HASH, f.name) for f in dataclasses.fields(GROUP_HASH)] == [
        "expected", "completed", "failed", "status", "startedPublished"]


def test_field_names_cannot_be_reassigned() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        REQUEST_HASH.status = "state"  # type: ignore[misc]


@pytest.mark.parametrize(("word", "proto"), REQUEST_PROTO.items())
def test_every_request_state_round_trips_through_proto_and_json(word: str, proto: int) -> None:
    assert state.status_to_proto(word) == proto
    assert state.status_to_proto(word.encode()) == proto
    assert state.status_from_proto(proto) == word
    assert state.status_to_json(proto) == word
    assert state.status_from_json(state.status_to_json(proto)) == proto
    assert json.loads(json.dumps({"status": state.status_from_proto(proto)})) == {"status": word}


def test_unspecified_is_unknown_in_json_and_has_no_state_word() -> None:
    unspecified = valuation_pb2.REQUEST_STATUS_UNSPECIFIED
    assert state.status_to_json(unspecified) == "unknown"
    assert state.status_to_json(99) == "unknown"
    assert state.status_from_json("unknown") == unspecified
    with pytest.raises(ValueError, match="RequestStatus 0 has no request state word"):
        state.status_from_proto(unspecified)
    assert state.JSON_STATUSES == ("received", "started", "succeeded", "failed", "cancelled", "unknown")


@pytest.mark.parametrize("word", ["group_started", "group_completed", "", "SUCCEEDED", "running"])
def test_words_that_are_not_request_states_map_to_unspecified(word: str) -> None:
    assert state.status_to_proto(word) == valuation_pb2.REQUEST_STATUS_UNSPECIFIED
    assert state.status_to_proto(None) == valuation_pb2.REQUEST_STATUS_UNSPECIFIED


def test_terminal_set_is_succeeded_failed_and_cancelled_for_str_and_bytes() -> None:
    words, protos = state.TERMINAL, state.TERMINAL_PROTO
    assert words == set(TERMINAL_WORDS)
    assert protos == {valuation_pb2.REQUEST_STATUS_SUCCEEDED, valuation_pb2.REQUEST_STATUS_FAILED,
                      valuation_pb2.REQUEST_STATUS_CANCELLED}
    for word in EVENT_WORDS:
        expected = word in TERMINAL_WORDS
        assert state.is_terminal(word) is expected, word
        assert state.is_terminal(word.encode()) is expected, word
    assert state.is_terminal(None) is False
    assert state.is_terminal(b"") is False


def test_group_events_are_the_two_group_words() -> None:
    assert [word for word in EVENT_WORDS if state.is_group_event(word)] == ["group_started", "group_completed"]


def test_parse_status_reads_str_and_bytes_and_names_a_bad_word() -> None:
    assert state.parse_status(b"group_started") is Status.GROUP_STARTED
    assert state.parse_status("failed") is Status.FAILED
    with pytest.raises(ValueError, match="'finished' is not a request status"):
        state.parse_status(b"finished")
    with pytest.raises(ValueError, match="'' is not a request status"):
        state.parse_status(None)


def test_word_decodes_redis_replies() -> None:
    assert state.word(b"completed") == "completed"
    assert state.word("completed") == "completed"
    assert state.word(None) == ""


@pytest.mark.parametrize(("word", "proto"), [("high", valuation_pb2.PRIORITY_HIGH),
                                             ("normal", valuation_pb2.PRIORITY_NORMAL),
                                             ("batch", valuation_pb2.PRIORITY_BATCH)])
def test_priorities_round_trip_through_proto_and_headers(word: str, proto: int) -> None:
    assert state.priority_from_proto(proto) == word
    assert state.priority_to_proto(word) == proto
    assert state.priority_to_proto(word.encode()) == proto
    assert state.parse_priority(f" {word.upper()} ") == word


def test_unspecified_or_absent_priority_is_normal_and_an_unknown_one_is_named() -> None:
    assert state.priority_from_proto(valuation_pb2.PRIORITY_UNSPECIFIED) == "normal"
    assert state.priority_to_proto(None) == valuation_pb2.PRIORITY_NORMAL
    with pytest.raises(ValueError, match="priority 9 is not one of high, normal, batch"):
        state.priority_from_proto(9)
    with pytest.raises(ValueError, match="'urgent' is not a priority"):
        state.parse_priority("urgent")


def test_task_status_round_trips_through_proto() -> None:
    assert state.task_status(True) is TaskStatus.COMPLETED
    assert state.task_status(False) is TaskStatus.FAILED
    assert state.task_status_to_proto(TaskStatus.COMPLETED) == task_pb2.TASK_OUTCOME_STATUS_COMPLETED
    assert state.task_status_to_proto(TaskStatus.FAILED) == task_pb2.TASK_OUTCOME_STATUS_FAILED
    for status in (TaskStatus.COMPLETED, TaskStatus.FAILED):
        assert state.task_status_from_proto(state.task_status_to_proto(status)) is status
    with pytest.raises(ValueError, match="TaskOutcomeStatus 0 has no task status word"):
        state.task_status_from_proto(task_pb2.TASK_OUTCOME_STATUS_UNSPECIFIED)


@pytest.mark.parametrize("status", list(Status))
def test_every_event_status_round_trips_through_stream_fields(status: Status) -> None:
    event = lifecycle.new_event("r1", status, group_index=2)
    fields = to_fields(event)
    assert fields["status"] == str(status)
    wire = {key.encode() if isinstance(key, str) else key: str(value).encode() for key, value in fields.items()}
    assert state.parse_status(from_fields(streams_pb2.LifecycleEvent, wire).status) is status


def test_task_update_status_round_trips_through_stream_fields() -> None:
    for status in TaskStatus:
        fields = to_fields(streams_pb2.TaskUpdate(request_id="r1", status=status))
        assert fields["status"] == str(status)
        wire = {key: str(value).encode() for key, value in fields.items()}
        assert from_fields(streams_pb2.TaskUpdate, wire).status == status


def test_lua_terminal_condition_names_every_terminal_word() -> None:
    assert state.lua_is_terminal("s") == "(s == 'cancelled' or s == 'failed' or s == 'succeeded')"


async def test_status_words_and_field_names_land_in_redis_as_plain_text(redis_client: redis.Redis) -> None:
    key = keys.request_state_key("r1")
    await redis_client.hset(key, mapping={REQUEST_HASH.status: Status.STARTED, REQUEST_HASH.group_count: 2})
    assert await redis_client.hgetall(key) == {b"status": b"started", b"groupCount": b"2"}


async def _finish(client: redis.Redis, request_id: str, status: str) -> bool:
    """The terminal compare-and-set alone, as vnvs's ledger queues it in its finish step."""
    pipe = client.pipeline(transaction=False)
    lifecycle.queue_finish(pipe, request_id, status, "2026-01-01T00:00:00.000Z")
    (won,) = await pipe.execute()
    return bool(won)


@pytest.mark.parametrize("end", [Status.SUCCEEDED, Status.FAILED])
async def test_the_terminal_compare_and_set_refuses_every_later_finish(redis_client: redis.Redis, end: Status) -> None:
    await redis_client.hset(keys.request_state_key("r1"), REQUEST_HASH.status, Status.STARTED)
    assert await _finish(redis_client, "r1", end)
    for later in (Status.SUCCEEDED, Status.FAILED):
        assert not await _finish(redis_client, "r1", later)
    stored = await redis_client.hmget(keys.request_state_key("r1"), [REQUEST_HASH.status, REQUEST_HASH.completed_at])
    assert stored == [str(end).encode(), b"2026-01-01T00:00:00.000Z"]


async def test_the_terminal_compare_and_set_ignores_an_unknown_request(redis_client: redis.Redis) -> None:
    assert not await _finish(redis_client, "missing", Status.SUCCEEDED)
    assert not await redis_client.exists(keys.request_state_key("missing"))


def test_a_non_terminal_finish_is_refused_before_redis() -> None:
    with pytest.raises(ValueError, match="started is not a terminal status"):
        lifecycle.queue_finish(None, "r1", Status.STARTED, "now")  # type: ignore[arg-type]
