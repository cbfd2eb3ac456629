"""How late the event loop runs: a ticker that measures its own lateness, for health and a metric.

A service whose loop is stalled (CPU-bound work on it, a blocking call) answers nothing, health checks
included; once it runs again it must not claim SERVING until it has kept up for a while. `current_lag`
is safe to call from another thread, so a metrics scrape (served from its own thread) sees a stall
growing while it happens. Every service exports both figures with `export_lag`:
`<service>_event_loop_lag_seconds` (now) and `<service>_event_loop_lag_max_seconds` (worst since start,
so a stall between two scrapes is not missed).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from prometheus_client import REGISTRY, CollectorRegistry, Gauge

TICK_S = 0.1
# Gauges by (registry, metric prefix): a process (or a test) that builds a service twice rebinds them.
_GAUGES: dict[tuple[int, str], tuple[Gauge, Gauge]] = {}


class LoopLagMonitor:
    """Ticks every TICK_S; `stalled` once a tick came `stall_s` late, until `recover_s` of on-time ticks."""

    def __init__(self, stall_s: float, recover_s: float | None = None) -> None:
        self.stall_s = stall_s
        self.recover_s = recover_s if recover_s is not None else max(2 * stall_s, 1.0)
        self.stalled = False
        self.last_lag = 0.0
        self.max_lag = 0.0
        self._last_tick = time.monotonic()
        self._stalled_until = 0.0
        self._stop = asyncio.Event()

    def current_lag(self) -> float:
        """Seconds the loop is behind now: the last tick's lateness, or how overdue the next tick is."""
        overdue = time.monotonic() - self._last_tick - TICK_S
        return max(self.last_lag, overdue, 0.0)

    def worst_lag(self) -> float:
        """The largest lateness seen since start, a stall still going on included."""
        return max(self.max_lag, self.current_lag())

    def stop(self) -> None:
        """End `run` (when it was not given an event of its own)."""
        self._stop.set()

    async def run(self, stopping: asyncio.Event | None = None,
                  on_change: Callable[[bool], Awaitable[None]] | None = None) -> None:
        """Tick until `stopping` (or `stop()`) is set; call `on_change(stalled)` whenever the state flips."""
        stopping = stopping if stopping is not None else self._stop
        self._last_tick = time.monotonic()
        while not stopping.is_set():
            await asyncio.sleep(TICK_S)
            now = time.monotonic()
            self.last_lag = max(0.0, now - self._last_tick - TICK_S)
            self.max_lag = max(self.max_lag, self.last_lag)
            self._last_tick = now
            if self.last_lag >= self.stall_s:
                self._stalled_until = now + self.recover_s
            stalled = now < self._stalled_until
            if stalled != self.stalled:
                self.stalled = stalled
                if on_change is not None:
                    await on_change(stalled)


def export_lag(prefix: str, monitor: LoopLagMonitor, registry: CollectorRegistry = REGISTRY) -> None:
    """Publish the monitor's current and worst lag as `<prefix>_event_loop_lag_seconds` and
    `<prefix>_event_loop_lag_max_seconds` on `registry`."""
    key = (id(registry), prefix)
    if key not in _GAUGES:
        _GAUGES[key] = (
            Gauge(f"{prefix}_event_loop_lag_seconds",
                  "How late the event loop runs now; a stall shows while it lasts (read from another thread).",
                  registry=registry),
            Gauge(f"{prefix}_event_loop_lag_max_seconds", "The worst event-loop lateness since the process started.",
                  registry=registry),
        )
    now, worst = _GAUGES[key]
    now.set_function(monitor.current_lag)
    worst.set_function(monitor.worst_lag)
