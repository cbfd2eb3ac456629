"""In-process no-op pricer for overhead benchmarks: the task document is its own result."""

from __future__ import annotations


def price(task_xml: bytes) -> bytes:
    return task_xml
