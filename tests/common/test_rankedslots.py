"""RankedSlots: the local queue of a consumer starts its waiting entries by rank, then by arrival."""

from __future__ import annotations

import asyncio

from vncommon.rankedslots import RankedSlots


async def test_waiters_enter_by_rank_then_in_arrival_order() -> None:
    slots = RankedSlots(1)
    entered: list[str] = []
    gate = asyncio.Event()

    async def run(name: str, rank: int) -> None:
        async with slots.hold(rank):
            entered.append(name)
            await gate.wait()

    first = asyncio.create_task(run("first", 2))
    await asyncio.sleep(0)
    waiting = [asyncio.create_task(run(name, rank)) for name, rank in
               (("batch-1", 2), ("normal-1", 1), ("high-1", 0), ("batch-2", 2), ("high-2", 0))]
    await asyncio.sleep(0.01)
    assert entered == ["first"]
    gate.set()
    await asyncio.gather(first, *waiting)
    assert entered == ["first", "high-1", "high-2", "normal-1", "batch-1", "batch-2"]


async def test_a_cancelled_waiter_gives_up_its_place_and_no_slot_is_lost() -> None:
    slots = RankedSlots(2)
    release = asyncio.Event()

    async def hold() -> None:
        async with slots.hold():
            await release.wait()

    holders = [asyncio.create_task(hold()) for _ in range(2)]
    await asyncio.sleep(0)
    cancelled = asyncio.create_task(hold())
    await asyncio.sleep(0)
    cancelled.cancel()
    release.set()
    await asyncio.gather(*holders)
    entered = 0
    async def count() -> None:
        nonlocal entered
        async with slots.hold():
            entered += 1
            await asyncio.sleep(0.01)
    await asyncio.wait_for(asyncio.gather(*(count() for _ in range(2))), 1)
    assert entered == 2 and cancelled.cancelled()


async def test_a_waiter_overtaken_for_longer_than_the_limit_goes_first() -> None:
    slots = RankedSlots(1, max_wait_s=0.05)
    entered: list[str] = []

    async def run(name: str, rank: int, seconds: float) -> None:
        async with slots.hold(rank):
            entered.append(name)
            await asyncio.sleep(seconds)

    tasks = [asyncio.create_task(run("first", 0, 0.01))]
    await asyncio.sleep(0)
    tasks.append(asyncio.create_task(run("low", 2, 0)))
    for number in range(20):  # better-ranked work keeps arriving faster than it is served
        tasks.append(asyncio.create_task(run(f"high-{number}", 0, 0.01)))
    await asyncio.gather(*tasks)
    # "low" was overtaken until it had waited 50 ms (about five 10 ms tasks), then went first.
    assert 3 <= entered.index("low") <= 8, entered


async def test_waiters_served_by_age_leave_no_entries_behind_while_others_keep_waiting() -> None:
    slots = RankedSlots(1, max_wait_s=0.0)  # every waiter is old enough at once: all served by age
    sizes: list[int] = []
    started: list[asyncio.Task[None]] = []

    async def run(number: int) -> None:
        async with slots.hold(2 if number % 2 else 0):
            sizes.append(len(slots._by_rank))
            if number + 5 < 2000:  # five waiters behind this one at all times: the queue never empties
                started.append(asyncio.create_task(run(number + 5)))
            await asyncio.sleep(0)

    started.extend(asyncio.create_task(run(number)) for number in range(5))
    while not all(task.done() for task in started):
        await asyncio.gather(*started)
    # What the heap holds stays a few times the waiters, not one entry per waiter ever served.
    assert len(sizes) == 2000 and max(sizes) <= 2 * 5 + 65, max(sizes)
