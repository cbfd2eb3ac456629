"""How many dispatch entries beyond its free slots a worker should hold: those it can start soon.

A worker whose tasks take microseconds (an in-process pricer) finishes a slot's task long before the
next fetch would come back, so it fetches a whole batch and queues it locally: one XREADGROUP and one
read of the task documents for many tasks. A worker whose tasks take longer (a script, a real model)
gains nothing from holding entries, and would only keep them from idle workers, so it holds none.
"Soon" is a time horizon, measured against the running average of the task durations seen so far.
"""

from __future__ import annotations

# Entries that would start within this horizon are worth fetching with the current batch: a queued entry
# waits about this long at most, so holding it costs an idle worker elsewhere no more than that. Durations
# are wall time on the worker's loop (they grow when it is busy), which errs towards holding fewer.
HORIZON_S = 0.05
# Weight of the newest duration in the running average (about the last 20 tasks).
SMOOTHING = 0.05


class PrefetchGauge:
    """The running average of task execution times and the local queue length it justifies."""

    def __init__(self, concurrency: int, limit: int) -> None:
        self._concurrency = concurrency
        self._limit = limit
        self._average_s: float | None = None  # unknown until the first task ran: hold nothing extra

    def observe(self, seconds: float) -> None:
        previous = self._average_s
        self._average_s = seconds if previous is None else previous + SMOOTHING * (seconds - previous)

    @property
    def average_s(self) -> float | None:
        """The running average task duration; None until the first task ran."""
        return self._average_s

    def extra(self) -> int:
        """Entries beyond the free slots that would start within the horizon; at most the limit."""
        if self._average_s is None or self._limit == 0:
            return 0
        soon = self._concurrency * HORIZON_S / max(self._average_s, 1e-6)
        return min(self._limit, int(soon))
