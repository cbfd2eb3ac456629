"""The Redis keyspace (SPEC section 5): the only place that builds stream and key names.

Every key of one request carries the id in braces so a Redis Cluster keeps the request in one slot.
"""

from __future__ import annotations

import functools
import hashlib
import zlib
from collections.abc import Callable, Iterable, Sequence

from vncommon.state import PRIORITIES, Priority

INGEST_STREAM = "stream:request:ingest"
LIFECYCLE_STREAM = "stream:request:lifecycle"
DISPATCH_STREAM = "stream:task:dispatch"

INGEST_GROUP = "orchestrator-main"
DISPATCH_GROUP = "task-workers"
UPDATES_GROUP = "orchestrator"

# Approximate MAXLEN per stream (SPEC section 5).
INGEST_MAXLEN = 10_000
LIFECYCLE_MAXLEN = 50_000
DISPATCH_MAXLEN = 100_000


def _tag(request_id: str) -> str:
    return "{" + request_id + "}"


def request_xml_key(request_id: str) -> str:
    return f"cache:request:{_tag(request_id)}:xml"


def request_response_key(request_id: str) -> str:
    return f"cache:request:{_tag(request_id)}:response"


def request_metadata_key(request_id: str) -> str:
    return f"cache:request:{_tag(request_id)}:metadata"


def request_failure_key(request_id: str) -> str:
    return f"cache:request:{_tag(request_id)}:failure"


def request_events_key(request_id: str) -> str:
    """List of this request's lifecycle events in order, for Watch to replay."""
    return f"cache:request:{_tag(request_id)}:events"


def task_xml_key(request_id: str, group_index: int, task_id: str) -> str:
    return f"cache:task:{_tag(request_id)}:{group_index}:{task_id}:xml"


def task_result_key(request_id: str, group_index: int, task_id: str) -> str:
    return f"cache:task:{_tag(request_id)}:{group_index}:{task_id}:result"


def request_state_key(request_id: str) -> str:
    return f"state:request:{_tag(request_id)}"


def group_state_key(request_id: str, group_index: int) -> str:
    return f"state:request:{_tag(request_id)}:group:{group_index}"


def group_tasks_key(request_id: str, group_index: int) -> str:
    """Hash taskId -> attempt state of the group's tasks (checkpoint for resume)."""
    return f"state:request:{_tag(request_id)}:group:{group_index}:tasks"


def lease_key(request_id: str) -> str:
    """The orchestrator lease: which vnvs instance drives the request."""
    return f"lease:request:{_tag(request_id)}"


def tombstone_key(request_id: str) -> str:
    """Outlives the request's data so results of a purged request answer 410."""
    return f"tombstone:request:{_tag(request_id)}"


def updates_stream(request_id: str) -> str:
    return f"stream:task:updates:{_tag(request_id)}"


def idempotency_key(key: str) -> str:
    return f"request:idempotency:{key}"


def request_keys(request_id: str, group_count: int) -> list[str]:
    """Every fixed key of a request (task keys are listed from the group task hashes)."""
    keys = [
        request_xml_key(request_id),
        request_response_key(request_id),
        request_metadata_key(request_id),
        request_failure_key(request_id),
        request_events_key(request_id),
        request_state_key(request_id),
    ]
    for group_index in range(group_count):
        keys.append(group_state_key(request_id, group_index))
        keys.append(group_tasks_key(request_id, group_index))
    return keys


ACTIVE_REQUESTS = "requests:active"
"""Sorted set of running request ids scored by lease expiry (ms); orphaned ones are taken over."""

DEADLETTER_STREAM = "stream:task:deadletter"
"""Poison tasks (delivered more than their budget without finishing), with full context."""
DEADLETTER_MAXLEN = 10_000

RECENT_REQUESTS = "console:requests:recent"
"""Sorted set of request ids scored by submission time (ms), newest kept: the console's request list."""
RECENT_REQUESTS_MAX = 10_000
"""The index keeps at most this many ids (trimmed on every write)."""

LIFECYCLE_HOMES = "lifecycle:homes"
"""Counter each vnapi instance increments at start; the value modulo STREAM_SHARDS is its home lifecycle
shard (vnapi.lifecycle_home)."""


def task_attempts_key(request_id: str, group_index: int) -> str:
    """Hash taskId -> the latest attempt of each task of a group (status, attempt, ms, worker), for the console."""
    return f"console:request:{_tag(request_id)}:group:{group_index}:attempts"

# -- sharded global streams (STREAM_SHARDS) --------------------------------------------------------
# With STREAM_SHARDS=1 each global stream keeps its name above. With N > 1 it is split into N streams,
# each with its own hash tag (`stream:task:dispatch:{s3}`), so a Redis Cluster spreads them over its
# masters. A request's ingest and dispatch entries go to the shard of its id (`shard_of`), its lifecycle
# events to its lifecycle shard (`lifecycle_shard_of`, another hash, so that vnapi can route them). A
# dispatch shard's dead letters go to the dead-letter stream of the same shard.


def shard_of(request_id: str, shards: int) -> int:
    """The shard of a request: stable across processes and restarts (CRC-32 of the id)."""
    return zlib.crc32(request_id.encode()) % shards if shards > 1 else 0


SLOTS = 16384  # hash slots of a Redis Cluster


@functools.cache
def shard_tag(shard: int, shards: int) -> str:
    """The hash tag of a shard: the first `s<shard>-<n>` whose slot lies in the shard's even share of the
    slot space, so N shards spread over a cluster's masters as evenly as its slot ranges are."""
    from redis.crc import key_slot  # only sharded layouts need it

    low, high = shard * SLOTS // shards, (shard + 1) * SLOTS // shards
    n = 0
    while not low <= key_slot(f"s{shard}-{n}".encode()) < high:
        n += 1
    return f"s{shard}-{n}"


def _sharded(base: str, shard: int, shards: int) -> str:
    return base if shards <= 1 else f"{base}:{{{shard_tag(shard, shards)}}}"


def ingest_stream(request_id: str, shards: int) -> str:
    return _sharded(INGEST_STREAM, shard_of(request_id, shards), shards)


# -- dispatch tiers (request priority) --------------------------------------------------------------
# Each priority has its own dispatch stream(s): `normal` keeps the names above, `high` and `batch` add
# their word. The tiers of one shard live in one hash slot, so a worker reads them in one script call
# on a cluster too: sharded they share the shard's tag (`stream:task:dispatch:high:{s3}`); unsharded
# they carry `{stream:task:dispatch}`, whose slot is that of the untagged `stream:task:dispatch`.


def _tier_stream(priority: Priority, shard: int, shards: int) -> str:
    if priority is Priority.NORMAL:
        return _sharded(DISPATCH_STREAM, shard, shards)
    if shards <= 1:
        return f"{{{DISPATCH_STREAM}}}:{Priority(priority)}"
    return f"{DISPATCH_STREAM}:{Priority(priority)}:{{{shard_tag(shard, shards)}}}"


def dispatch_stream(request_id: str, shards: int, priority: Priority = Priority.NORMAL) -> str:
    """The dispatch stream of a request of this priority."""
    return _tier_stream(priority, shard_of(request_id, shards), shards)


def lifecycle_shard_of(request_id: str, shards: int) -> int:
    """The lifecycle shard of a request: a hash of its own (the first 4 bytes of BLAKE2b of the id),
    independent of `shard_of`. vnapi draws the ids it makes so that their lifecycle shard is its home
    shard (vncommon.requestid); their ingest and dispatch shards stay spread evenly because the two hashes
    are unrelated. (Not CRC-32 of a derivation: CRC is affine over GF(2), so CRC-32 of a prefixed id is
    CRC-32 of the id XOR a constant, and at 4 or 8 shards every id of a lifecycle shard would share one
    dispatch shard.)"""
    if shards <= 1:
        return 0
    return int.from_bytes(hashlib.blake2b(request_id.encode(), digest_size=4).digest(), "big") % shards


def lifecycle_shard_stream(shard: int, shards: int) -> str:
    """The lifecycle stream of one shard."""
    return _sharded(LIFECYCLE_STREAM, shard, shards)


def lifecycle_stream(request_id: str, shards: int) -> str:
    """Where a request's lifecycle events are published: every publisher names the stream through this."""
    return lifecycle_shard_stream(lifecycle_shard_of(request_id, shards), shards)


def request_lifecycle_streams(request_id: str, layouts: Sequence[int]) -> list[str]:
    """The lifecycle streams a request's events may be on: its stream under STREAM_SHARDS, then under each
    layout still draining (publishers not yet rolled to the new count), without repeats."""
    return list(dict.fromkeys(lifecycle_stream(request_id, shards) for shards in layouts))


def deadletter_stream(dispatch: str) -> str:
    """The dead-letter stream beside a dispatch stream (same priority, same shard, same hash tag)."""
    return dispatch.replace(DISPATCH_STREAM, DEADLETTER_STREAM, 1)


def _all(name_of: Callable[[int, int], str], layouts: Iterable[int]) -> list[str]:
    """Every stream named by `name_of(shard, shards)` under each shard count in `layouts`, without
    repeats, in order."""
    found: list[str] = []
    for shards in layouts:
        for shard in range(max(1, shards)):
            name = name_of(shard, shards)
            if name not in found:
                found.append(name)
    return found


def ingest_streams(layouts: Sequence[int]) -> list[str]:
    """The ingest streams a consumer reads: those of STREAM_SHARDS, then those still draining."""
    return _all(functools.partial(_sharded, INGEST_STREAM), layouts)


def dispatch_streams(layouts: Sequence[int], priority: Priority = Priority.NORMAL) -> list[str]:
    """The dispatch streams of one priority, in the same shard order for every priority."""
    return _all(functools.partial(_tier_stream, priority), layouts)


def dispatch_tiers(layouts: Sequence[int]) -> list[list[str]]:
    """The dispatch streams of every priority, highest first: what a worker reads."""
    return [dispatch_streams(layouts, priority) for priority in PRIORITIES]


def all_dispatch_streams(layouts: Sequence[int]) -> list[str]:
    """Every dispatch stream of every priority: what is trimmed, gauged and shown."""
    return [stream for tier in dispatch_tiers(layouts) for stream in tier]

