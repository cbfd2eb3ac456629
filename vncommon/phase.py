"""The shutdown phase of a stream consumer, and the Redis retry that reads it.

One phase, moving only forward, replaces a stop flag per layer: whoever needs to know how far the
stop has come (the fetch loop, a handler between retries, a settle retrying across a Redis outage)
asks the phase. Giving up is a value the caller checks, not an exception crossing layers.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar

from vncommon.aio import sleep_or_stop
from vncommon.backoff import Backoff
from vncommon.redisconn import REDIS_ERRORS

log = logging.getLogger(__name__)
T = TypeVar("T")


class Phase(enum.IntEnum):
    """How far a consumer's stop has come."""

    RUNNING = 0
    STOPPING = 1  # fetching has ended; in-flight work has the grace to finish
    ABANDONING = 2  # the grace is over: unfinished work is cancelled and its entries stay pending
    STOPPED = 3  # no work runs any more; what is still pending can be handed back


class ShutdownPhase:
    """How far the stop has come, and sleeps that end early once a phase is reached."""

    def __init__(self) -> None:
        self._reached = {phase: asyncio.Event() for phase in Phase}
        self._reached[Phase.RUNNING].set()

    def reached(self, phase: Phase) -> bool:
        return self._reached[phase].is_set()

    def advance(self, phase: Phase) -> None:
        """Move forward to `phase` (through the ones before it); a phase already passed stays passed."""
        for step in Phase:
            if step <= phase:
                self._reached[step].set()

    async def sleep(self, seconds: float, until: Phase) -> bool:
        """Sleep `seconds`, or less: True (at once) when `until` is reached."""
        return await sleep_or_stop(self._reached[until], seconds)


class RedisRetry:
    """Retries an operation across Redis outages until the phase says to give up on it."""

    def __init__(self, phase: ShutdownPhase, retry_on: tuple[type[Exception], ...] = REDIS_ERRORS,
                 on_error: Callable[[str], None] | None = None) -> None:
        self._phase = phase
        self._retry_on = retry_on
        self._on_error = on_error

    async def __call__(self, what: str, operation: Callable[[], Awaitable[T]], gives_up_at: Phase,
                       fields: Mapping[str, object] | None = None) -> tuple[bool, T | None]:
        """(True, result) once `operation` succeeds; (False, None) if it failed after `gives_up_at` was
        reached: the caller then leaves its entry pending for another consumer."""
        backoff = Backoff()
        while True:
            try:
                return True, await operation()
            except self._retry_on as exc:
                if self._phase.reached(gives_up_at):
                    log.warning("stopping: left the entry pending, could not %s", what,
                                extra={"fields": {**(fields or {}), "error": str(exc)}})
                    return False, None
                if self._on_error is not None:
                    self._on_error(what)
                log.warning("redis error, retrying", extra={"fields": {"operation": what, "error": str(exc)}})
                await self._phase.sleep(backoff.next(), until=gives_up_at)
