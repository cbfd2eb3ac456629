"""In-process no-op pricer for overhead benchmarks: the task document is its own result.

Declared async so the worker calls it on its event loop (a plain function would run in a thread).
"""

from __future__ import annotations


async def price(task_xml: bytes) -> bytes:
    return task_xml
