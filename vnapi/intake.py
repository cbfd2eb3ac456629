"""Storing a checked submission: idempotency claim, request keys, state and the ingest entry."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as redis

from vn.v1 import streams_pb2
from vnapi.ingestqueue import mark_queued, wait_until_queued
from vncommon import console_records, keys, trace, tracing
from vncommon.errors import IdempotencyKeyReused, Unavailable
from vncommon.rediscluster import spans_slots
from vncommon.requestid import new_request_id
from vncommon.slotpipe import after_part, shared_part, step_pipeline
from vncommon.state import REQUEST_HASH, Priority, Status
from vncommon.streams import text, to_fields
from vncommon.timeutil import utc_now_iso

log = logging.getLogger(__name__)

# How long a duplicate waits for the first submission with its key to finish storing.
CLAIM_SETTLE_TIMEOUT_S = 5.0
CLAIM_SETTLE_POLL_S = 0.02
CLAIM_ATTEMPTS = 3
RESERVED_METADATA = ("contentType", "idempotencyKey", "sha256", "traceId")

# Deletes the idempotency claim only if it still names this request (a failed store must not keep it).
_RELEASE_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def body_sha256(xml: bytes) -> str:
    """The hex SHA-256 of a body (hashlib releases the GIL while it hashes a large one)."""
    return hashlib.sha256(xml).hexdigest()


@dataclass(frozen=True, slots=True)
class Submission:
    """A submission that passed validation."""

    xml: bytes
    group_count: int
    content_type: str = "application/xml"
    idempotency_key: str = ""
    metadata: Mapping[str, str] = field(default_factory=dict)
    trace_id: str = ""
    received_at: str = field(default_factory=utc_now_iso)
    priority: Priority = Priority.NORMAL
    deadline_at_ms: int = 0  # epoch milliseconds; 0: no deadline
    # Hashed once: the claim, its release and the metadata all need it, and a body may be 10 MiB (the
    # servicer hashes a large one in its check pool; empty means "hash it here").
    sha256: str = field(default="", repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.sha256:
            object.__setattr__(self, "sha256", body_sha256(self.xml))


@dataclass(frozen=True, slots=True)
class Accepted:
    """Which request a submission maps to; deduplicated when an earlier one with the same key won."""

    request_id: str
    trace_id: str
    deduplicated: bool = False


class Intake:
    """Writes new requests to Redis; the only writer of a request's initial state."""

    def __init__(self, client: redis.Redis, request_ttl_seconds: int, stream_shards: int = 1,
                 new_request_id: Callable[[], str] = new_request_id) -> None:
        self._client = client
        self._ttl = request_ttl_seconds
        self._shards = stream_shards
        self.new_request_id = new_request_id
        self._index_trim = console_records.Trimming()

    async def submit(self, submission: Submission, request_id: str | None = None) -> Accepted:
        """Store the submission under `request_id` (or a new id), or return the earlier one with its key."""
        request_id = request_id or self.new_request_id()
        # Resolved (and checked) by the servicer from the field or a kept X-Trace-Id header.
        trace_id = submission.trace_id or trace.fresh_trace_id()
        if submission.idempotency_key:
            earlier = await self._claim(submission, request_id)
            if earlier is not None:
                log.info("duplicate submission", extra={"fields": {"requestId": earlier, "traceId": trace_id}})
                return Accepted(earlier, trace_id, deduplicated=True)
        try:
            await self._store(submission, request_id, trace_id)
        except BaseException:
            if submission.idempotency_key:
                await asyncio.shield(self._release(submission, request_id))
            raise
        log.info(
            "request received",
            extra={"fields": {"requestId": request_id, "traceId": trace_id, "groupCount": submission.group_count,
                              "sizeBytes": len(submission.xml)}},
        )
        return Accepted(request_id, trace_id)

    async def _claim(self, submission: Submission, request_id: str) -> str | None:
        """SET NX the key; None when this request won it, else the id of the request that holds it."""
        key = keys.idempotency_key(submission.idempotency_key)
        value = f"{request_id}|{submission.sha256}"
        for _ in range(CLAIM_ATTEMPTS):
            if await self._client.set(key, value, nx=True, ex=self._ttl):
                return None
            held = await self._client.get(key)
            if held is None:
                continue  # expired or released between SET and GET: try to claim again
            earlier_id, _, earlier_sha = text(held).partition("|")
            if earlier_sha != submission.sha256:
                raise IdempotencyKeyReused(
                    "this idempotency key was already used with a different body", {"requestId": earlier_id}
                )
            await self._wait_until_stored(earlier_id)
            if not spans_slots(self._client):
                await wait_until_queued(self._client, keys.ingest_stream(earlier_id, self._shards), earlier_id,
                                        CLAIM_SETTLE_TIMEOUT_S, CLAIM_SETTLE_POLL_S)
            return earlier_id
        raise Unavailable("the idempotency key is changing hands; retry the submission")

    async def _wait_until_stored(self, request_id: str) -> None:
        # The winner claims the key before its MULTI lands; a duplicate answers only once the
        # request is queryable, so "status is queryable when Submit returns" holds for it too.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + CLAIM_SETTLE_TIMEOUT_S
        state_key, tombstone = keys.request_state_key(request_id), keys.tombstone_key(request_id)
        while not await self._client.exists(state_key, tombstone):
            if loop.time() > deadline:
                raise Unavailable("an earlier submission with this idempotency key is still being stored; retry")
            await asyncio.sleep(CLAIM_SETTLE_POLL_S)

    async def _release(self, submission: Submission, request_id: str) -> None:
        key = keys.idempotency_key(submission.idempotency_key)
        try:
            await self._client.eval(_RELEASE_SCRIPT, 1, key, f"{request_id}|{submission.sha256}")
        except Exception:
            log.warning("could not release idempotency key", extra={"fields": {"requestId": request_id}})

    async def _store(self, submission: Submission, request_id: str, trace_id: str) -> None:
        """One MULTI: body, metadata, state and the ingest entry land together or not at all (on a cluster the
        entry follows the MULTI)."""
        submitted_at = utc_now_iso()
        xml_key = keys.request_xml_key(request_id)
        metadata_key = keys.request_metadata_key(request_id)
        response_key = keys.request_response_key(request_id)
        metadata: dict[Any, Any] = {
            **submission.metadata,
            "contentType": submission.content_type,
            "idempotencyKey": submission.idempotency_key,
            "sha256": submission.sha256,
            "traceId": trace_id,
        }
        h = REQUEST_HASH
        state: dict[Any, Any] = {
            h.status: Status.RECEIVED, h.xml_key: xml_key, h.response_key: response_key, h.metadata_key: metadata_key,
            h.group_count: submission.group_count, h.current_group: 0, h.retry_count: 0,
            h.received_at: submission.received_at, h.submitted_at: submitted_at, h.trace_id: trace_id,
            h.priority: submission.priority,
        }
        if submission.deadline_at_ms:
            state[h.deadline_at_ms] = submission.deadline_at_ms
        fields: dict[Any, Any] = to_fields(streams_pb2.IngestEntry(
            request_id=request_id, trace_id=trace_id, traceparent=tracing.current_traceparent() or None))
        # On a cluster the request's keys are one atomic script on its slot, then the ingest entry (another
        # slot) follows, never precedes, them: see vnapi.ingestqueue for a crash between the two.
        pipe = step_pipeline(self._client, atomic=True)
        pipe.set(xml_key, submission.xml)
        pipe.hset(metadata_key, mapping=metadata)
        pipe.hset(keys.request_state_key(request_id), mapping=state)
        # No MAXLEN here: trimming at XADD could drop entries still pending in the group. The
        # ingest consumer trims only what every consumer has finished with (see ingest.py).
        shared_part(pipe).xadd(keys.ingest_stream(request_id, self._shards), fields)
        # The console's index is a global key: with the shared appends on a cluster.
        console_records.queue_submitted(shared_part(pipe), request_id, int(time.time() * 1000), self._ttl,
                                        trim=self._index_trim.due())
        if submission.idempotency_key and not spans_slots(self._client):
            mark_queued(after_part(pipe), request_id)
        await pipe.execute()
