"""In-process no-op pricer for overhead benchmarks: the task document is its own result.

Declared async so the worker calls it on its event loop (a plain function would run in a thread).
"""

from __future__ import annotations

import asyncio


async def price(task_xml: bytes) -> bytes:
    return task_xml


async def sleep_5ms(task_xml: bytes) -> bytes:
    """A pricer that takes 5 ms without using CPU: the worker's slots, not its cores, are the limit."""
    await asyncio.sleep(0.005)
    return task_xml
