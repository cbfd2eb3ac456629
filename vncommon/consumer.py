"""The loop every stream consumer runs: fetch entries into a bounded number of slots, run each as a
task, and stop in phases. vnapi's ingest consumer and vnas's dispatch consumer subclass it.

Fetch takes over entries that (presumably dead) consumers left idle (XAUTOCLAIM, scanning the pending
list a batch at a time and, after a full pass, waiting `claim_interval_s` before the next), then reads
new ones (XREADGROUP) for as many slots as are free plus `fetch_extra()` more: entries a subclass
expects to start soon wait in a small local queue for a slot, so a batch of short tasks costs one
fetch instead of one per slot. Queued entries count as held: they are kept fresh and handed back.
The group is created on first use and again when the stream vanished (NOGROUP); Redis being away, or
refusing a read, never ends the loop: it backs off.

Stopping follows the service runner's phases: `stop_fetching()` ends fetching; `finish(grace)` gives
in-flight work the grace, then cancels the unfinished (their entries stay pending) and gives settles
already started a short drain; `hand_back()` marks what this consumer still holds idle, so a live
consumer reclaims it at once.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Coroutine
from typing import Any, Generic, TypeVar

from redis.exceptions import ResponseError

from vncommon.backoff import Backoff
from vncommon.consumergroup import FULL_PASS, ConsumerGroup, StreamEntry, is_missing_group
from vncommon.phase import Phase, ShutdownPhase
from vncommon.rankedslots import RankedSlots
from vncommon.redisconn import REDIS_ERRORS

log = logging.getLogger(__name__)
E = TypeVar("E", bound=StreamEntry)
T = TypeVar("T")
Loop = Coroutine[Any, Any, None]

# Settles already sent to Redis get this long to land after the grace period (they are shielded).
SETTLE_DRAIN_S = 2.0
# One hand-back looks at this many pending entries beyond a few per slot (lost reads leave extras).
HAND_BACK_SPARE = 100


class StreamConsumer(ABC, Generic[E]):
    """One consumer of a group, running up to `concurrency` entries at once."""

    name = "consumer"  # names its asyncio tasks: <name>-fetch, <name>-<entry id>

    def __init__(self, group: ConsumerGroup, *, concurrency: int, claim_idle_ms: int, claim_interval_s: float,
                 block_ms: int, backoff_s: tuple[float, float] = (0.05, 2.0), max_extra: int = 0) -> None:
        self.group = group
        self.phase = ShutdownPhase()
        self.outcomes: Counter[str] = Counter()
        self._concurrency = concurrency
        self._max_extra = max_extra  # the most entries ever held beyond the slots (see fetch_extra)
        self._claim_idle_ms = claim_idle_ms
        self._claim_interval_s = claim_interval_s
        self._block_ms = block_ms
        self._backoff_s = backoff_s
        self._slots = RankedSlots(concurrency)  # entries running handle(); queued ones start by rank
        self._room = asyncio.Event()  # set whenever a held entry ends
        self._inflight: dict[str, asyncio.Task[None]] = {}  # every held entry: running or queued
        self._settling: set[asyncio.Future[Any]] = set()
        self._fetcher: asyncio.Task[None] | None = None
        self._claim_cursor = FULL_PASS
        self._next_claim_at = 0.0

    # -- what a subclass provides ------------------------------------------------------------------

    @abstractmethod
    async def prepare(self, entries: list[StreamEntry]) -> list[E]:
        """The fetched entries, ready to handle: one for each, in order. Must not raise for Redis."""

    @abstractmethod
    async def handle(self, entry: E) -> Loop | None:
        """Run one entry; an entry not settled stays pending for a reclaim. What it returns (its settle)
        runs once its slot is free for the next entry: settles of entries that finished meanwhile then
        go to Redis together."""

    def fetch_extra(self) -> int:
        """How many entries beyond the free slots are worth holding now (they start soon); 0: none."""
        return 0

    def rank(self, entry: E) -> int:
        """Queued entries start lowest rank first (then oldest first): e.g. by request priority."""
        return 0

    async def upkeep(self) -> None:
        """Paced housekeeping on the fetch loop (trimming, say); Redis errors back off like a fetch's."""

    def on_redis_error(self, operation: str) -> None:
        """Count a Redis error backed off from (metrics)."""

    def on_reclaimed(self, count: int) -> None:
        """Count entries taken over from idle consumers (metrics)."""

    def on_in_flight(self, delta: int) -> None:
        """Count entries starting (+1) and ending (-1) (metrics)."""

    # -- the runner's phases -----------------------------------------------------------------------

    @property
    def running(self) -> int:
        """Entries inside a slot now (running handle())."""
        return self._slots.busy

    @property
    def in_flight(self) -> int:
        return len(self._inflight)

    def in_flight_ids(self) -> list[str]:
        return list(self._inflight)

    def loops(self, drain: bool = False) -> dict[str, Loop]:
        """The long-lived loops, by name; each returns once fetching has stopped (and work is over)."""
        return {f"{self.name}-fetch": self.fetch_loop(drain)}

    def stop_fetching(self) -> None:
        """Fetch no more (safe to call twice, or before the loop runs); in-flight work goes on."""
        self.phase.advance(Phase.STOPPING)
        # Cancelling a blocked read can lose its reply; such entries stay pending and are handed back.
        if self._fetcher is not None and not self._fetcher.done():
            self._fetcher.cancel()

    async def finish(self, grace_s: float) -> None:
        """Give in-flight work `grace_s`; cancel what is unfinished (its entries stay pending)."""
        self.stop_fetching()
        running = set(self._inflight.values())
        if running:
            log.info("waiting for in-flight entries", extra={"fields": {"stream": self.group.stream,
                                                                         "count": len(running), "graceS": grace_s}})
            _done, pending = await asyncio.wait(running, timeout=grace_s)
            if pending:
                log.warning("grace period over; leaving unfinished entries pending",
                            extra={"fields": {"stream": self.group.stream, "count": len(pending)}})
                self.phase.advance(Phase.ABANDONING)
                for task in pending:
                    task.cancel()
                await asyncio.wait(pending, timeout=SETTLE_DRAIN_S)
        self.phase.advance(Phase.ABANDONING)
        if self._settling:
            await asyncio.wait(set(self._settling), timeout=SETTLE_DRAIN_S)
        self.phase.advance(Phase.STOPPED)

    async def hand_back(self) -> None:
        """Make this consumer's unfinished entries look idle so live consumers reclaim them at once."""
        try:
            limit = (self._concurrency + self._max_extra) * 4 + HAND_BACK_SPARE
            ids = await self.group.hand_back(self._claim_idle_ms, limit)
        except (*REDIS_ERRORS, ResponseError) as exc:
            log.warning("could not hand back pending entries",
                        extra={"fields": {"stream": self.group.stream, "error": str(exc)}})
            return
        if ids:
            log.info("handed back unfinished entries", extra={"fields": {"stream": self.group.stream,
                                                                          "count": len(ids)}})

    async def shielded(self, settle: Coroutine[Any, Any, T]) -> T:
        """Run `settle` to its end even if the handler is cancelled: once an ack or a result write has
        started, a stop must not cut it in half. `finish` gives these a short drain."""
        task = asyncio.ensure_future(settle)
        self._settling.add(task)
        task.add_done_callback(self._settling.discard)
        return await asyncio.shield(task)

    # -- fetch -------------------------------------------------------------------------------------

    async def fetch_loop(self, drain: bool = False) -> None:
        """Fetch and start entries until `stop_fetching()`; with `drain`, until nothing is left for us."""
        self._fetcher = asyncio.create_task(self._fetch_until_stopped(drain), name=f"{self.name}-fetch")
        try:
            await asyncio.wait({self._fetcher})
        finally:
            self._fetcher.cancel()  # a no-op once it ended; if this loop is cancelled, fetching ends too
        if not self._fetcher.cancelled():
            self._fetcher.result()

    async def _fetch_until_stopped(self, drain: bool) -> None:
        backoff = Backoff(*self._backoff_s)
        group_ready = False
        while not self.phase.reached(Phase.STOPPING):
            count = await self._room_to_hold()
            try:
                if not group_ready:
                    await self.group.ensure_group()
                    group_ready = True
                await self.upkeep()
                fetched = await self._fetch(count, drain)
            except (*REDIS_ERRORS, ResponseError) as exc:
                group_ready = group_ready and not is_missing_group(exc)
                await self._back_off(exc, backoff)
                continue
            backoff.reset()
            for entry in await self.prepare(fetched):
                self._start(entry)
            if drain and not fetched:
                if not self._inflight:
                    return
                await asyncio.wait(set(self._inflight.values()), return_when=asyncio.FIRST_COMPLETED)

    async def _back_off(self, error: Exception, backoff: Backoff) -> None:
        """NOGROUP: recreate the group at once. Anything else (a lost connection, READONLY during a
        failover, ...) is Redis being unavailable: log, wait, try again; a consumer never exits for it."""
        fields = {"stream": self.group.stream, "error": str(error)}
        if is_missing_group(error):
            log.warning("stream or consumer group vanished, recreating it", extra={"fields": fields})
            return
        self.on_redis_error("fetch")
        if isinstance(error, ResponseError):
            log.error("redis refused the fetch, backing off", extra={"fields": fields})
        else:
            log.warning("redis unavailable while fetching, backing off", extra={"fields": fields})
        await asyncio.sleep(backoff.next())

    async def _room_to_hold(self) -> int:
        """Wait until this consumer holds fewer entries than it may; the batch size of the next fetch."""
        while True:
            room = self._concurrency + min(self._max_extra, max(0, self.fetch_extra())) - len(self._inflight)
            if room > 0:
                return room
            self._room.clear()
            await self._room.wait()

    async def _fetch(self, count: int, drain: bool) -> list[StreamEntry]:
        entries = await self._reclaim(count, force=False)
        if entries:
            return entries
        entries = await self.group.read_new(count, None if drain else self._block_ms)
        if not entries and drain:
            # Before calling the stream drained, look at idle entries whatever the pacing says.
            entries = await self._reclaim(count, force=True)
        return entries

    async def _reclaim(self, count: int, force: bool) -> list[StreamEntry]:
        """XAUTOCLAIM idle entries, scanning the pending list a batch at a time; paced when idle."""
        now = time.monotonic()
        if not force and now < self._next_claim_at:
            return []
        batch = await self.group.autoclaim(self._claim_idle_ms, self._claim_cursor, count)
        self._claim_cursor = batch.cursor
        if batch.cursor == FULL_PASS and len(batch.entries) < count:
            # Scanned the whole pending list: look again after the claim interval.
            self._next_claim_at = now + self._claim_interval_s
        if batch.deleted:
            log.warning("pending entries were trimmed before anyone settled them",
                        extra={"fields": {"stream": self.group.stream, "entryIds": batch.deleted}})
        # An entry of ours that went idle while it still runs is not started twice.
        entries = [entry for entry in batch.entries if entry.entry_id not in self._inflight]
        if entries:
            self.on_reclaimed(len(entries))
            log.info("reclaimed idle entries", extra={"fields": {"stream": self.group.stream,
                                                                  "count": len(entries)}})
        return entries

    def _start(self, entry: E) -> None:
        task = asyncio.create_task(self._run(entry), name=f"{self.name}-{entry.entry_id}")
        self._inflight[entry.entry_id] = task
        self.on_in_flight(1)
        task.add_done_callback(functools.partial(self._reap, entry.entry_id))

    async def _run(self, entry: E) -> None:
        """Wait in the local queue for a slot; an entry whose turn comes after stopping stays pending.
        The entry stays held (in flight) until its settle, which runs after the slot is free."""
        settle: Loop | None = None
        async with self._slots.hold(self.rank(entry)):
            if not self.phase.reached(Phase.STOPPING):
                settle = await self.handle(entry)
        if settle is not None:
            await settle

    def _reap(self, entry_id: str, task: asyncio.Task[None]) -> None:
        """A held entry ended: make room for the next fetch and make sure an unexpected error is seen."""
        self._inflight.pop(entry_id, None)
        self._room.set()
        self.on_in_flight(-1)
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            self.outcomes["crashed"] += 1
            log.error("entry handler crashed; its entry stays pending", exc_info=error,
                      extra={"fields": {"stream": self.group.stream, "entryId": entry_id}})
