"""Publishing lifecycle events and the one-way transition to a terminal state.

Each event is appended to the request's own event list (so Watch can replay it in order) and to the
shared lifecycle stream (for live readers). The terminal transition is a compare-and-set on the state
hash, so exactly one caller wins it and publishes the single terminal event.
"""

from __future__ import annotations

import json

import redis.asyncio as redis

from vn.v1 import streams_pb2
from vncommon import keys
from vncommon.rediscluster import spans_slots
from vncommon.slotpipe import SlotPipeline, StepPipeline, is_script, shared_part
from vncommon.state import REQUEST_HASH, TERMINAL, lua_is_terminal
from vncommon.streams import to_fields
from vncommon.timeutil import utc_now_iso

# Sets status to ARGV[1] with completedAt ARGV[2] unless the request already ended or is unknown.
_FINISH_SCRIPT = f"""
local current = redis.call('HGET', KEYS[1], '{REQUEST_HASH.status}')
if not current or {lua_is_terminal("current")} then return 0 end
redis.call('HSET', KEYS[1], '{REQUEST_HASH.status}', ARGV[1], '{REQUEST_HASH.completed_at}', ARGV[2])
return 1
"""


# Publishes the event (history, then stream) unless the request already ended with another status: a run
# racing a cancel must not add events after the terminal one. KEYS: state, events list, lifecycle stream;
# ARGV: the event's status, its JSON, the stream's MAXLEN, then the entry's field/value pairs.
_PUBLISH_UNLESS_ENDED = f"""
local current = redis.call('HGET', KEYS[1], '{REQUEST_HASH.status}')
if current and current ~= ARGV[1] and {lua_is_terminal("current")} then return 0 end
local sequence = redis.call('RPUSH', KEYS[2], ARGV[2])
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[3], '*', unpack(ARGV, 4))
return sequence
"""


def lua_announce(maxlen_arg: int) -> str:
    """Lua for a script that has just pushed an event onto the request's list (its position in the local
    `sequence`): append it to the lifecycle stream KEYS[3] when the script was given that key (one Redis;
    on a cluster it is in another slot and the caller announces the event after the script). ARGV[maxlen_arg]
    is the stream's MAXLEN, the arguments after it the entry's pairs (`entry_pairs`)."""
    return f"""
if KEYS[3] then
  local entry = {{KEYS[3], 'MAXLEN', '~', ARGV[{maxlen_arg}], '*'}}
  for i = {maxlen_arg + 1}, #ARGV do entry[#entry + 1] = ARGV[i] end
  entry[#entry + 1] = 'sequence'
  entry[#entry + 1] = sequence
  redis.call('XADD', unpack(entry))
end
"""


def scripted_event_keys(client: redis.Redis, request_id: str, shards: int) -> list[str]:
    """The KEYS of a script that publishes an event with `lua_announce`: the request's state hash and
    event list, then its lifecycle stream where the script may write it too (one Redis)."""
    script_keys = [keys.request_state_key(request_id), keys.request_events_key(request_id)]
    if spans_slots(client):
        script_keys.append(keys.lifecycle_stream(request_id, shards))
    return script_keys


async def announce_scripted(client: redis.Redis, event: streams_pb2.LifecycleEvent, sequence: int,
                            shards: int) -> None:
    """After such a script published `event` as `sequence`: on a cluster, where the stream was not one of
    its keys, append it to the stream now (the event list has it already)."""
    if spans_slots(client):
        return
    event.sequence = sequence
    await announce(client, event, shards)


def entry_pairs(event: streams_pb2.LifecycleEvent) -> list[str]:
    """The event's stream entry as field/value arguments, without the sequence a script adds."""
    return [str(item) for name, value in to_fields(event).items() if name != "sequence" for item in (name, value)]


def new_event(request_id: str, status: str, group_index: int = -1, detail: str = "") -> streams_pb2.LifecycleEvent:
    return streams_pb2.LifecycleEvent(
        request_id=request_id, status=status, group_index=group_index, timestamp=utc_now_iso(), detail=detail
    )


def event_to_json(event: streams_pb2.LifecycleEvent) -> str:
    return json.dumps(
        {"status": event.status, "groupIndex": event.group_index, "timestamp": event.timestamp, "detail": event.detail}
    )


def event_from_json(request_id: str, sequence: int, raw: bytes | str) -> streams_pb2.LifecycleEvent:
    data = json.loads(raw)
    return streams_pb2.LifecycleEvent(
        request_id=request_id,
        status=data["status"],
        group_index=int(data["groupIndex"]),
        timestamp=data["timestamp"],
        detail=data.get("detail", ""),
        sequence=sequence,
    )


async def publish(client: redis.Redis, event: streams_pb2.LifecycleEvent, shards: int = 1
                  ) -> streams_pb2.LifecycleEvent:
    """Record the event in the request's history, then announce it on its lifecycle stream shard."""
    event.sequence = await client.rpush(keys.request_events_key(event.request_id), event_to_json(event))
    await announce(client, event, shards)
    return event


async def announce(client: redis.Redis, event: streams_pb2.LifecycleEvent, shards: int = 1) -> None:
    """Announce an event already in the request's history on its lifecycle stream shard."""
    await client.xadd(keys.lifecycle_stream(event.request_id, shards), to_fields(event),
                      maxlen=keys.LIFECYCLE_MAXLEN, approximate=True)


def queue_publish(pipe: StepPipeline, event: streams_pb2.LifecycleEvent, shards: int = 1) -> None:
    """Add the event to a pipeline (the caller, the request's only publisher while it runs, knows its
    sequence). On one Redis it is skipped (reply 0) if the request ended meanwhile with another status.
    On a cluster that script would span slots: the event list is the request's own key, the stream append
    goes to the step's shared part, and a run racing a cancel may add an event after the terminal one
    (readers stop at the terminal event). In a guarded step (`vncommon.slotpipe`) the step's own guard
    is the check."""
    stream = keys.lifecycle_stream(event.request_id, shards)
    if isinstance(pipe, SlotPipeline) or is_script(pipe):
        queue_publish_won(pipe, event, shards)
        return
    pairs = [item for pair in to_fields(event).items() for item in pair]
    pipe.eval(_PUBLISH_UNLESS_ENDED, 3, keys.request_state_key(event.request_id),
              keys.request_events_key(event.request_id), stream, event.status,
              event_to_json(event), keys.LIFECYCLE_MAXLEN, *pairs)


def queue_publish_won(pipe: StepPipeline, event: streams_pb2.LifecycleEvent, shards: int = 1) -> None:
    """Add the event to a pipeline without the ended-already check: for the terminal event of the caller
    that has just won the terminal status (`queue_finish`), which nothing changes afterwards."""
    pipe.rpush(keys.request_events_key(event.request_id), event_to_json(event))
    shared_part(pipe).xadd(keys.lifecycle_stream(event.request_id, shards), to_fields(event),
                           maxlen=keys.LIFECYCLE_MAXLEN, approximate=True)


def queue_finish(pipe: StepPipeline, request_id: str, status: str, completed_at: str) -> None:
    """Add the terminal compare-and-set to a pipeline; its reply is 1 for the one caller that wins."""
    if status not in TERMINAL:
        raise ValueError(f"{status} is not a terminal status")
    pipe.eval(_FINISH_SCRIPT, 1, keys.request_state_key(request_id), status, completed_at)

