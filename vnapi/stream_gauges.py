"""Gauges of the mesh's shared streams, refreshed by vnapi: backlog per consumer group and dead letters.

Prometheus scrapes a process's registry without touching Redis; this loop keeps the numbers at most
one interval old, so the alert rules (deploy/prometheus) can see a stream fall behind.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import redis.asyncio as redis
from prometheus_client import Gauge

from vnapi.workers_view import watched_streams
from vncommon import keys
from vncommon.aio import sleep_or_stop
from vncommon.redisconn import REDIS_ERRORS
from vncommon.streams import text

log = logging.getLogger(__name__)
REFRESH_S = 15.0

STREAM_PENDING = Gauge("vn_stream_pending_entries", "Entries delivered to a consumer group and not acknowledged.",
                       ["stream"])
STREAM_LAG = Gauge("vn_stream_lag_entries", "Entries of a stream not yet delivered to its consumer group.",
                   ["stream"])
DEAD_LETTERS = Gauge("vn_deadletter_entries", "Entries in the dead-letter stream (poison tasks).")


async def refresh(client: redis.Redis, layouts: Sequence[int] = (1,)) -> None:
    for stream, group in watched_streams(layouts):
        groups: list[Any] = await client.xinfo_groups(stream) if await client.exists(stream) else []
        info = next((g for g in groups if text(g.get("name") or "") == group), None)
        STREAM_PENDING.labels(stream).set(int(info.get("pending") or 0) if info else 0)
        STREAM_LAG.labels(stream).set(int(info.get("lag") or 0) if info else 0)
    letters = [keys.deadletter_stream(dispatch) for dispatch in keys.all_dispatch_streams(layouts)]
    DEAD_LETTERS.set(sum([int(await client.xlen(stream)) for stream in letters]))


async def run(client: redis.Redis, stop: asyncio.Event, layouts: Sequence[int] = (1,),
              every_s: float = REFRESH_S) -> None:
    # The first reading waits one interval: at start the consumer groups are still being created.
    while not await sleep_or_stop(stop, every_s):
        try:
            await refresh(client, layouts)
        except (*REDIS_ERRORS, redis.RedisError) as exc:  # a gauge is never worth stopping the process
            log.debug("stream gauges not refreshed", extra={"fields": {"error": str(exc)}})

