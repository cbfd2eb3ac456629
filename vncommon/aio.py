"""asyncio helpers: waiting that gives way to a stop signal, and long steps that give the loop turns."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Iterable
from typing import TypeVar

T = TypeVar("T")

# Items of a long step between turns of the event loop: recording or encoding 128 dispatch entries of
# 5 KiB takes 3 to 7 ms, so a large step does not hold timers and I/O for long.
TURN_ITEMS = 128


async def until_stopped(awaitable: Awaitable[T], stop: asyncio.Event, *also: asyncio.Event
                        ) -> tuple[bool, T | None]:
    """Await `awaitable` unless `stop` (or one of `also`) is set first: (True, result) or (False, None)
    after cancelling it.

    Used for blocking Redis reads, so a stop request does not wait for BLOCK to run out.
    """
    work = asyncio.ensure_future(awaitable)
    signals = [asyncio.ensure_future(event.wait()) for event in (stop, *also)]
    try:
        await asyncio.wait({work, *signals}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for signal in signals:
            signal.cancel()
        if not work.done():
            work.cancel()
            await asyncio.wait({work})
    if work.cancelled():
        return False, None
    return True, work.result()


async def wait_any(*events: asyncio.Event) -> None:
    """Return as soon as one of `events` is set."""
    waits = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()


async def sleep_or_stop(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep `seconds`; return True early (and at once) when `stop` is set."""
    try:
        async with asyncio.timeout(max(seconds, 0.0)):
            await stop.wait()
    except TimeoutError:
        return stop.is_set()
    return True


async def in_turns(items: Iterable[T], every: int = TURN_ITEMS) -> AsyncIterator[T]:
    """The items, giving the event loop a turn after every `every` of them (none for a short run)."""
    for index, item in enumerate(items):
        if index and index % every == 0:
            await asyncio.sleep(0)
        yield item
