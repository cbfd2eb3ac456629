"""One lifecycle reader per process, handing events to in-process subscribers (SPEC section 5).

Sync submitters and Watch calls subscribe by request id; the hub runs a single plain XREAD loop on
the lifecycle stream and puts each event only on the queues of its own request, so the cost of an
event does not depend on how many clients are waiting.

With STREAM_SHARDS > 1 the hub reads every shard: in one XREAD on a single Redis, and with one read loop
per shard on a cluster (one command may not span the shards' slots).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import redis.asyncio as redis

from vn.v1 import streams_pb2
from vncommon import keys
from vncommon.aio import sleep_or_stop, until_stopped
from vncommon.backoff import Backoff
from vncommon.rediscluster import is_cluster
from vncommon.redisconn import REDIS_ERRORS
from vncommon.streams import from_fields, text

log = logging.getLogger(__name__)

READ_COUNT = 500
BACKOFF_START_S = 0.05
BACKOFF_CAP_S = 2.0

# Put on every queue after the reader recovered from an outage: events may have been missed, so a
# subscriber should look at the request's state (or event list) again.
RESYNC = None
Item = streams_pb2.LifecycleEvent | None


class Subscription:
    """The events of one request, in stream order; `RESYNC` (None) means "re-check the state"."""

    def __init__(self, request_id: str) -> None:
        self.request_id = request_id
        self.queue: asyncio.Queue[Item] = asyncio.Queue()

    async def get(self, within: float | None = None) -> Item:
        """The next item; raises TimeoutError when `within` seconds pass first."""
        async with asyncio.timeout(within):
            return await self.queue.get()


class LifecycleHub:
    """Reads `stream:request:lifecycle` once for the whole process."""

    def __init__(self, client: redis.Redis, block_ms: int, count: int = READ_COUNT,
                 streams: Sequence[str] = (keys.LIFECYCLE_STREAM,)) -> None:
        self._client = client
        self._streams = list(streams)
        self._block_ms = block_ms
        self._count = count
        self._subscribers: dict[str, set[Subscription]] = {}
        self.reads = 0  # XREAD calls issued; lets tests and metrics see there is one loop
        self.ready = asyncio.Event()
        self._ready_loops: set[str] = set()

    @property
    def subscriber_count(self) -> int:
        return sum(len(subs) for subs in self._subscribers.values())

    @contextmanager
    def subscribe(self, request_id: str) -> Iterator[Subscription]:
        """Receive the request's events while the block runs."""
        subscription = Subscription(request_id)
        self._subscribers.setdefault(request_id, set()).add(subscription)
        try:
            yield subscription
        finally:
            self._unsubscribe(subscription)

    def _unsubscribe(self, subscription: Subscription) -> None:
        subs = self._subscribers.get(subscription.request_id)
        if subs is None:
            return
        subs.discard(subscription)
        if not subs:
            del self._subscribers[subscription.request_id]

    def dispatch(self, event: streams_pb2.LifecycleEvent) -> None:
        for subscription in self._subscribers.get(event.request_id, ()):
            subscription.queue.put_nowait(event)

    def _resync_all(self) -> None:
        for subs in self._subscribers.values():
            for subscription in subs:
                subscription.queue.put_nowait(RESYNC)

    async def run(self, stop: asyncio.Event) -> None:
        """Read until `stop` is set; Redis outages are waited out with backoff, never fatal."""
        if len(self._streams) > 1 and is_cluster(self._client):
            loops = [self._run_streams([stream], stop, len(self._streams)) for stream in self._streams]
            await asyncio.gather(*loops)
        else:
            await self._run_streams(self._streams, stop, 1)

    async def _run_streams(self, streams: list[str], stop: asyncio.Event, loops: int) -> None:
        last_ids: dict[str, str] | None = None
        ready_loops = self._ready_loops
        backoff = Backoff(BACKOFF_START_S, BACKOFF_CAP_S)
        failed = False
        while not stop.is_set():
            try:
                if last_ids is None:
                    last_ids = {stream: await self._tail_id(stream) for stream in streams}
                    ready_loops.add(streams[0])
                    if len(ready_loops) >= loops:
                        self.ready.set()
                last_ids = await self._read_once(last_ids, stop)
            except REDIS_ERRORS as exc:
                failed = True
                delay = backoff.next()
                log.warning("lifecycle read failed, retrying",
                            extra={"fields": {"error": str(exc), "delayS": delay}})
                await sleep_or_stop(stop, delay)
                continue
            if failed:
                failed = False
                backoff.reset()
                log.info("lifecycle reader recovered")
                self._resync_all()

    async def _tail_id(self, stream: str) -> str:
        """The id of the newest entry: reading after it is "from $" without a gap between reads."""
        newest: Any = await self._client.xrevrange(stream, count=1)
        return text(newest[0][0]) if newest else "0-0"

    async def _read_once(self, last_ids: dict[str, str], stop: asyncio.Event) -> dict[str, str]:
        self.reads += 1
        positions: dict[Any, Any] = dict(last_ids)
        read = self._client.xread(positions, count=self._count, block=self._block_ms)
        done, result = await until_stopped(read, stop)
        streams: Any = result or []
        if not done:
            return last_ids
        for stream, entries in streams:
            name = text(stream)
            for entry_id, fields in entries:
                last_ids[name] = text(entry_id)
                self._dispatch_fields(fields)
        return last_ids

    def _dispatch_fields(self, fields: dict[Any, Any]) -> None:
        try:
            event = from_fields(streams_pb2.LifecycleEvent, fields)
        except (ValueError, TypeError):
            log.warning("unreadable lifecycle entry skipped")
            return
        if event.request_id:
            self.dispatch(event)
