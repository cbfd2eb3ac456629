"""How late the event loop runs: a ticker that measures its own lateness, for health and a metric.

A service whose loop is stalled (CPU-bound work on it, a blocking call) answers nothing, health checks
included; once it runs again it must not claim SERVING until it has kept up for a while. `current_lag`
is safe to call from another thread, so a metrics scrape (served from its own thread) sees a stall
growing while it happens.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

TICK_S = 0.1


class LoopLagMonitor:
    """Ticks every TICK_S; `stalled` once a tick came `stall_s` late, until `recover_s` of on-time ticks."""

    def __init__(self, stall_s: float, recover_s: float | None = None) -> None:
        self.stall_s = stall_s
        self.recover_s = recover_s if recover_s is not None else max(2 * stall_s, 1.0)
        self.stalled = False
        self.last_lag = 0.0
        self._last_tick = time.monotonic()
        self._stalled_until = 0.0

    def current_lag(self) -> float:
        """Seconds the loop is behind now: the last tick's lateness, or how overdue the next tick is."""
        overdue = time.monotonic() - self._last_tick - TICK_S
        return max(self.last_lag, overdue, 0.0)

    async def run(self, stopping: asyncio.Event, on_change: Callable[[bool], Awaitable[None]]) -> None:
        """Tick until `stopping` is set; call `on_change(stalled)` whenever the state flips."""
        self._last_tick = time.monotonic()
        while not stopping.is_set():
            await asyncio.sleep(TICK_S)
            now = time.monotonic()
            self.last_lag = max(0.0, now - self._last_tick - TICK_S)
            self._last_tick = now
            if self.last_lag >= self.stall_s:
                self._stalled_until = now + self.recover_s
            stalled = now < self._stalled_until
            if stalled != self.stalled:
                self.stalled = stalled
                await on_change(stalled)
