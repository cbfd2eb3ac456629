"""One lifecycle reader per process, handing events to in-process subscribers (SPEC section 5).

Sync submitters and Watch calls subscribe by request id; the hub reads the lifecycle stream and puts each
event only on the queues of its own request, so the cost of an event does not depend on how many clients
are waiting.

With STREAM_SHARDS > 1 the hub reads a shard's stream only while the process needs it (routing). The home
shard (vnapi.lifecycle_home: every id this instance makes is on it, so its sync waiters are) is read
always; another shard from the moment its first subscriber arrives (a Watch of a request made through
another instance) until SHARD_IDLE_GRACE_S after its last one left. A reading that starts takes its
position from the stream's tail and then puts RESYNC on the queues of that shard's subscribers: what was
published before, they find in the request's state or event list. On one Redis the hub reads its shards
in one XREAD, restarted (the blocking read is cancelled) when a shard joins; on a cluster it runs one read
loop per shard (one command may not span the shards' slots), which ends when the shard is not needed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import redis.asyncio as redis

from vn.v1 import streams_pb2
from vnapi.lifecycle_home import LifecycleHome
from vnapi.metrics import LIFECYCLE_STREAMS_READ
from vncommon import keys
from vncommon.aio import sleep_or_stop, until_stopped, wait_any
from vncommon.backoff import Backoff
from vncommon.rediscluster import is_cluster
from vncommon.redisconn import REDIS_ERRORS
from vncommon.streams import from_fields, text

log = logging.getLogger(__name__)

READ_COUNT = 500
BACKOFF_START_S = 0.05
BACKOFF_CAP_S = 2.0
# A shard other than the home one is still read this long after its last subscriber left, so a client
# watching one request after another of that shard does not restart its reading every time.
SHARD_IDLE_GRACE_S = 5.0

# Put on a queue when events may have been missed (the reader recovered from an outage, or the reading of
# the subscription's shard has just started): the subscriber should look at the request's state (or event
# list) again.
RESYNC = None
Item = streams_pb2.LifecycleEvent | None


class Subscription:
    """The events of one request, in stream order; `RESYNC` (None) means "re-check the state"."""

    def __init__(self, request_id: str, streams: Sequence[str]) -> None:
        self.request_id = request_id
        self.streams = tuple(streams)  # where the request's events are published
        self.queue: asyncio.Queue[Item] = asyncio.Queue()

    async def get(self, within: float | None = None) -> Item:
        """The next item; raises TimeoutError when `within` seconds pass first."""
        async with asyncio.timeout(within):
            return await self.queue.get()


class LifecycleHub:
    """Reads the lifecycle stream(s) its subscribers need, once for the whole process."""

    def __init__(self, client: redis.Redis, block_ms: int, count: int = READ_COUNT,
                 layouts: Sequence[int] = (1,), home: LifecycleHome | None = None,
                 idle_grace_s: float = SHARD_IDLE_GRACE_S) -> None:
        self._client = client
        self._layouts = tuple(layouts)
        self._home = home or LifecycleHome(self._layouts[0])
        self._block_ms = block_ms
        self._count = count
        self._idle_grace_s = idle_grace_s
        self._subscribers: dict[str, set[Subscription]] = {}
        self._by_stream: dict[str, set[Subscription]] = {}
        self._reading: set[str] = set()  # streams a read loop has (reading, or taking its start position)
        self._unread: set[str] = set()  # streams with subscribers and no read loop yet
        self._idle_since: dict[str, float] = {}  # streams read without a subscriber, since (monotonic s)
        self._joined = asyncio.Event()  # a stream was added to _unread
        # With one unsharded stream (the default) every request is on it and nothing ever joins: no
        # stream to work out per subscription, no wake-up of the blocking read besides stop.
        unsharded = self._layouts == (1,)
        self._only_stream = (keys.LIFECYCLE_STREAM,) if unsharded else ()
        self._joins = () if unsharded else (self._joined,)
        self.reads = 0  # XREAD calls issued; lets tests and metrics see there is one loop
        self.stream_reads: Counter[str] = Counter()  # XREAD calls that read each stream
        self.ready = asyncio.Event()  # the home stream is being read

    @property
    def subscriber_count(self) -> int:
        return sum(len(subs) for subs in self._subscribers.values())

    @property
    def reading(self) -> frozenset[str]:
        """The streams read now (or about to be)."""
        return frozenset(self._reading)

    @contextmanager
    def subscribe(self, request_id: str) -> Iterator[Subscription]:
        """Receive the request's events while the block runs."""
        streams = self._only_stream or keys.request_lifecycle_streams(request_id, self._layouts)
        subscription = Subscription(request_id, streams)
        self._subscribers.setdefault(request_id, set()).add(subscription)
        for stream in subscription.streams:
            self._need(stream, subscription)
        try:
            yield subscription
        finally:
            self._unsubscribe(subscription)

    def _need(self, stream: str, subscription: Subscription) -> None:
        subs = self._by_stream.get(stream)
        if subs is None:
            subs = self._by_stream[stream] = set()
            self._idle_since.pop(stream, None)
            if stream not in self._reading:
                self._unread.add(stream)
                self._joined.set()
        subs.add(subscription)

    def _unsubscribe(self, subscription: Subscription) -> None:
        subs = self._subscribers.get(subscription.request_id)
        if subs is None:
            return
        subs.discard(subscription)
        if not subs:
            del self._subscribers[subscription.request_id]
        for stream in subscription.streams:
            on_stream = self._by_stream.get(stream)
            if on_stream is None:
                continue
            on_stream.discard(subscription)
            if not on_stream:
                del self._by_stream[stream]
                self._unread.discard(stream)
                if stream in self._reading:
                    self._idle_since[stream] = time.monotonic()

    def dispatch(self, event: streams_pb2.LifecycleEvent) -> None:
        for subscription in self._subscribers.get(event.request_id, ()):
            subscription.queue.put_nowait(event)

    def _resync(self, stream: str) -> None:
        for subscription in self._by_stream.get(stream, ()):
            subscription.queue.put_nowait(RESYNC)

    def _take_unread(self) -> list[str]:
        """Hand the streams waiting for a reader to the caller's loop(s)."""
        if not self._unread:
            return []
        taken = list(self._unread)
        self._unread.clear()
        for stream in taken:
            self._reading.add(stream)
            if stream not in self._by_stream:
                self._idle_since.setdefault(stream, time.monotonic())
        LIFECYCLE_STREAMS_READ.set(len(self._reading))
        return taken

    def _release_if_idle(self, stream: str) -> bool:
        """Stop reading `stream` (True) when it had no subscriber for the grace period; never the home."""
        since = self._idle_since.get(stream)
        if since is None or stream == self._home.stream or time.monotonic() - since < self._idle_grace_s:
            return False
        del self._idle_since[stream]
        self._reading.discard(stream)
        LIFECYCLE_STREAMS_READ.set(len(self._reading))
        return True

    def _started(self, stream: str) -> None:
        """The stream is read from its tail on: its subscribers look again at what came before."""
        self._resync(stream)
        if stream == self._home.stream:
            self.ready.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Read until `stop` is set; Redis outages are waited out with backoff, never fatal."""
        if self._home.stream not in self._reading:
            self._unread.add(self._home.stream)
        if is_cluster(self._client):
            await self._run_per_stream(stop)
        else:
            await self._run_together(stop)

    async def _run_together(self, stop: asyncio.Event) -> None:
        """One Redis: one XREAD over every stream read; a stream that joins interrupts a blocking read."""
        last_ids: dict[str, str] = {}
        outage = _Outage(self._resync, stop)
        while not stop.is_set():
            self._joined.clear()
            self._take_unread()
            for stream in [stream for stream in last_ids if self._release_if_idle(stream)]:
                del last_ids[stream]
            try:
                for stream in self._reading - last_ids.keys():
                    last_ids[stream] = await self._tail_id(stream)
                    self._started(stream)
                if self._unread:
                    continue  # joined while the tails were read: take it before blocking
                last_ids = await self._read_once(last_ids, stop, *self._joins)
            except REDIS_ERRORS as exc:
                await outage.wait_out(exc)
                continue
            outage.end(last_ids)

    async def _run_per_stream(self, stop: asyncio.Event) -> None:
        """A cluster: one read loop per stream, started when the stream is needed."""
        async with asyncio.TaskGroup() as loops:
            while not stop.is_set():
                self._joined.clear()
                for stream in self._take_unread():
                    loops.create_task(self._read_alone(stream, stop), name=f"lifecycle-read {stream}")
                await wait_any(stop, self._joined)

    async def _read_alone(self, stream: str, stop: asyncio.Event) -> None:
        last_ids: dict[str, str] = {}
        outage = _Outage(self._resync, stop)
        while not stop.is_set() and not self._release_if_idle(stream):
            try:
                if not last_ids:
                    last_ids[stream] = await self._tail_id(stream)
                    self._started(stream)
                last_ids = await self._read_once(last_ids, stop)
            except REDIS_ERRORS as exc:
                await outage.wait_out(exc)
                continue
            outage.end(last_ids)

    async def _tail_id(self, stream: str) -> str:
        """The id of the newest entry: reading after it is "from $" without a gap between reads."""
        newest: Any = await self._client.xrevrange(stream, count=1)
        return text(newest[0][0]) if newest else "0-0"

    async def _read_once(self, last_ids: dict[str, str], stop: asyncio.Event, *interrupts: asyncio.Event
                         ) -> dict[str, str]:
        self.reads += 1
        for stream in last_ids:
            self.stream_reads[stream] += 1
        positions: dict[Any, Any] = dict(last_ids)
        read = self._client.xread(positions, count=self._count, block=self._block_ms)
        done, result = await until_stopped(read, stop, *interrupts)
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


class _Outage:
    """A read loop's Redis outage: each failed read waits out its backoff; the first read that works again
    ends the outage and tells the subscribers of the streams read to re-check (events may have been missed)."""

    def __init__(self, resync: Callable[[str], None], stop: asyncio.Event) -> None:
        self._resync = resync
        self._stop = stop
        self._backoff = Backoff(BACKOFF_START_S, BACKOFF_CAP_S)
        self._failing = False

    async def wait_out(self, exc: BaseException) -> None:
        self._failing = True
        delay = self._backoff.next()
        log.warning("lifecycle read failed, retrying", extra={"fields": {"error": str(exc), "delayS": delay}})
        await sleep_or_stop(self._stop, delay)

    def end(self, streams: Iterable[str]) -> None:
        if not self._failing:
            return
        self._failing = False
        self._backoff.reset()
        log.info("lifecycle reader recovered")
        for stream in streams:
            self._resync(stream)
