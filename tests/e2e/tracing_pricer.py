"""The in-process pricer of the tracing test (VNAS_EXECUTOR=python:tests.e2e.tracing_pricer:flaky_once)."""

from __future__ import annotations

from vnas.task import TaskContext

FLAKY_TASK = (0, "2")  # (group index, task id) whose first attempt fails, so it is retried once


async def flaky_once(task_xml: bytes, ctx: TaskContext) -> bytes:
    if (ctx.group_index, ctx.task_id) == FLAKY_TASK and ctx.attempt == 1:
        raise ValueError("the first attempt fails on purpose")
    return f'<valuation name="{ctx.valuation_name}" task="{ctx.task_id}"><amount>1</amount></valuation>'.encode()
