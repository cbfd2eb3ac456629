"""In-process pricers for the VNAS_EXECUTOR tests (imported as tests.vnas.pricers)."""

from __future__ import annotations

import asyncio
import threading

from vnas.task import TaskContext

CALLS: list[str] = []


def flat_price(task_xml: bytes) -> str:
    """A plain function: runs in a worker thread, returns the legacy number form."""
    CALLS.append(threading.current_thread().name)
    return "100.125"


def float_price(task_xml: bytes) -> float:
    return 99.5


async def bare_valuation(task_xml: bytes, ctx: TaskContext) -> bytes:
    """An async function taking the context: returns a bare valuation naming the task."""
    await asyncio.sleep(0)
    return f'<valuation name="{ctx.valuation_name}" task="{ctx.task_id}"><ok/></valuation>'.encode()


def broken(task_xml: bytes) -> bytes:
    raise ValueError("no curve for EOD")


async def slow(task_xml: bytes) -> bytes:
    await asyncio.sleep(30)
    return b"1"


def wrong_type(task_xml: bytes) -> object:
    return {"price": 1}


NOT_CALLABLE = 3


async def sleep_2ms(task_xml: bytes) -> bytes:
    """Takes 2 ms without using CPU: a worker's slots, not its cores, bound how fast it goes."""
    await asyncio.sleep(0.002)
    return task_xml
