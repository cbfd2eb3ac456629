"""A semaphore whose waiters are served by rank, then in arrival order, with an age limit: the local
queue of a consumer holding entries of several priorities starts the highest-priority one first, and no
entry waits more than `max_wait_s` behind entries that arrived after it (so a steady flow of high-rank
work cannot starve a low-rank entry already held)."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

# How long a queued entry may be overtaken by later ones of a better rank before it goes first.
MAX_WAIT_S = 0.1


class RankedSlots:
    """`slots` holders at once; when one leaves, the oldest waiter if it waited `max_wait_s` or more,
    else the waiter with the lowest rank (then the oldest) enters."""

    def __init__(self, slots: int, max_wait_s: float = MAX_WAIT_S) -> None:
        self._slots = slots
        self._free = slots
        self._max_wait_s = max_wait_s
        self._by_rank: list[tuple[int, int, asyncio.Future[None]]] = []
        self._by_age: deque[tuple[float, asyncio.Future[None]]] = deque()
        self._arrivals = itertools.count()

    @property
    def busy(self) -> int:
        """How many holders are inside now."""
        return self._slots - self._free

    @asynccontextmanager
    async def hold(self, rank: int = 0) -> AsyncIterator[None]:
        await self._acquire(rank)
        try:
            yield
        finally:
            self._release()

    async def _acquire(self, rank: int) -> None:
        if self._free > 0 and not self._waiting():
            self._free -= 1
            return
        waiter = asyncio.get_running_loop().create_future()
        heapq.heappush(self._by_rank, (rank, next(self._arrivals), waiter))
        self._by_age.append((time.monotonic(), waiter))
        try:
            await waiter  # the releaser handed its slot over (the count stays as it was)
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._release()  # handed a slot just as it was cancelled: pass it on
            raise

    def _compact(self) -> None:
        """Drop the rank entries of waiters served by age: deep in the heap (low rank under a steady flow
        of better-ranked work) they would otherwise stay there, one per waiter so served."""
        if len(self._by_rank) > 2 * len(self._by_age) + 64:
            self._by_rank = [item for item in self._by_rank if not item[2].done()]
            heapq.heapify(self._by_rank)

    def _waiting(self) -> bool:
        while self._by_age and self._by_age[0][1].done():
            self._by_age.popleft()
        return bool(self._by_age)

    def _release(self) -> None:
        if self._waiting() and time.monotonic() - self._by_age[0][0] >= self._max_wait_s:
            self._by_age.popleft()[1].set_result(None)
            self._compact()
            return
        while self._by_rank:
            waiter = heapq.heappop(self._by_rank)[2]
            if not waiter.done():
                waiter.set_result(None)
                return
        self._free += 1
