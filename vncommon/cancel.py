"""Cancelling a request: the one transition to `cancelled`, for a caller's Cancel (vnapi) and for a
deadline that passed (vnvs).

One script on the request's own keys (one hash slot, so it holds on a Redis Cluster too) takes the
terminal state unless the request already ended, stores the detail where a failure's goes, appends the
`cancelled` event to the request's history, wakes the orchestrator through the request's updates stream
and starts the retention of the request's fixed keys. Only the caller that wins announces the event on
the shared lifecycle stream, so a request has exactly one terminal event whoever races for it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import redis.asyncio as redis

from vn.v1 import streams_pb2
from vncommon import keys, lifecycle
from vncommon.retention import TOMBSTONE_EXTRA_SECONDS
from vncommon.state import REQUEST_HASH, Status, TaskStatus, lua_is_terminal
from vncommon.streams import text, to_fields
from vncommon.timeutil import utc_now_iso

CANCELLED_BY_CALLER = "REQUEST_CANCELLED"
CANCELLED_AT_DEADLINE = "DEADLINE_EXCEEDED"

# KEYS: state, failure, events, updates stream, xml, metadata, response, tombstone.
# ARGV: completedAt, detail, event JSON, ttl, tombstone ttl, then the update entry's field/value pairs.
# Returns {status before, sequence of the cancelled event (0 when this call did not cancel)}.
_CANCEL_SCRIPT = f"""
local current = redis.call('HGET', KEYS[1], '{REQUEST_HASH.status}')
if not current then return {{'', 0}} end
if {lua_is_terminal("current")} then return {{current, 0}} end
redis.call('HSET', KEYS[1], '{REQUEST_HASH.status}', '{Status.CANCELLED}', '{REQUEST_HASH.completed_at}', ARGV[1])
redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[4])
local sequence = redis.call('RPUSH', KEYS[3], ARGV[3])
redis.call('XADD', KEYS[4], '*', unpack(ARGV, 6))
for i = 1, 7 do
  if i ~= 2 and i ~= 4 then redis.call('EXPIRE', KEYS[i], ARGV[4]) end
end
redis.call('SET', KEYS[8], '1', 'EX', ARGV[5])
return {{current, sequence}}
"""


@dataclass(frozen=True, slots=True)
class CancelOutcome:
    """What a cancel found and did: the status before it ("" for an unknown request), and whether it won."""

    previous: str
    cancelled: bool


def cancel_detail(reason: str, message: str) -> str:
    """The failure detail of a cancelled request (JSON, as a failed request's)."""
    return json.dumps({"reason": reason, "message": message})


async def cancel_request(client: redis.Redis, request_id: str, reason: str, message: str,
                         ttl_seconds: int, shards: int = 1) -> CancelOutcome:
    """Move the request to `cancelled` unless it already ended; publish the event if this call won."""
    detail = cancel_detail(reason, message)
    event = lifecycle.new_event(request_id, Status.CANCELLED, detail=detail)
    wake = to_fields(streams_pb2.TaskUpdate(request_id=request_id, status=TaskStatus.CANCELLED))
    pairs = [item for field in wake.items() for item in field]
    script_keys = [keys.request_state_key(request_id), keys.request_failure_key(request_id),
                   keys.request_events_key(request_id), keys.updates_stream(request_id),
                   keys.request_xml_key(request_id), keys.request_metadata_key(request_id),
                   keys.request_response_key(request_id), keys.tombstone_key(request_id)]
    reply: Any = await client.eval(_CANCEL_SCRIPT, len(script_keys), *script_keys, utc_now_iso(), detail,
                                   lifecycle.event_to_json(event), ttl_seconds,
                                   ttl_seconds + TOMBSTONE_EXTRA_SECONDS, *pairs)
    previous, sequence = text(reply[0]), int(reply[1])
    if sequence:
        event.sequence = sequence
        await lifecycle.announce(client, event, shards)
    return CancelOutcome(previous, bool(sequence))
