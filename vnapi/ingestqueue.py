"""The ingest entry of a stored request when it cannot share the request's MULTI (REDIS_MODE=cluster).

On one Redis the entry is part of the submission's MULTI/EXEC. On a cluster the ingest stream lives in
another hash slot, so the entry is written right after the request's own MULTI, never before it (the
ingest consumer acknowledges and drops an entry whose request does not exist).

A vnapi that dies between the two leaves a stored request that nobody runs. The client got no answer,
so it retries: with an idempotency key the retry is a duplicate of that request, and it heals it. The
winner marks `ingestQueued` once its entry is written; a duplicate waits for the mark, and when the mark
never comes and the request is still `received`, the first duplicate to set the mark queues the entry
itself. Without an idempotency key a retry is a new request and the stored one stays `received`.
"""

from __future__ import annotations

import asyncio
from typing import Any

import redis.asyncio as redis

from vn.v1 import streams_pb2
from vncommon import keys
from vncommon.state import REQUEST_HASH, Status
from vncommon.streams import text, to_fields


def mark_queued(pipe: Any, request_id: str) -> None:
    """Queue the mark that the request's ingest entry was written (in the step part after the entry)."""
    pipe.hset(keys.request_state_key(request_id), REQUEST_HASH.ingest_queued, "1")


async def wait_until_queued(client: redis.Redis, stream: str, request_id: str, timeout_s: float,
                            poll_s: float) -> None:
    """A duplicate's wait: until the request's ingest entry was written (or the request moved on); queue
    it here if its submitter died before writing it."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    state_key = keys.request_state_key(request_id)
    while True:
        queued, status, trace_id = await client.hmget(
            state_key, [REQUEST_HASH.ingest_queued, REQUEST_HASH.status, REQUEST_HASH.trace_id])
        if queued is not None or status is None or text(status) != Status.RECEIVED:
            return  # written, or the request runs (or ended, or was purged: it answers from its tombstone)
        if loop.time() > deadline:
            break
        await asyncio.sleep(poll_s)
    if await client.hsetnx(state_key, REQUEST_HASH.ingest_queued, "requeued"):
        entry = streams_pb2.IngestEntry(request_id=request_id, trace_id=text(trace_id or b""))
        await client.xadd(stream, to_fields(entry))
