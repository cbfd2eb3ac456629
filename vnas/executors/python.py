"""The in-process executor (VNAS_EXECUTOR=python:package.module:function): no process per task."""

from __future__ import annotations

import asyncio
import importlib
import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from vnas.executors.result import normalise_result
from vnas.limits import ResultTooLarge, check_size
from vnas.settings import DEFAULT_MAX_RESULT_BYTES
from vnas.task import TaskContext, TaskFailed, TaskOutcome, elapsed_ms
from vncommon import errortext
from vncommon.errors import ConfigError
from vncommon.pricerresult import BadReturn, as_result_bytes

log = logging.getLogger(__name__)


class PythonExecutor:
    """Runs `package.module:function` in-process: no process per task, for pure-Python pricers.

    The function takes the task XML bytes (and, if it has a second parameter or one named `ctx`, the
    TaskContext) and returns result XML (bytes or str) or a number. Plain functions run in a worker
    thread so they never stall the event loop; a thread cannot be killed, so on timeout the attempt fails
    while the call finishes in the background.
    """

    def __init__(self, target: str, timeout_s: float, max_result_bytes: int = DEFAULT_MAX_RESULT_BYTES) -> None:
        self.target = target
        self._max_result_bytes = max_result_bytes
        self._function = load_function(target)
        self._timeout_s = timeout_s
        self._is_async = inspect.iscoroutinefunction(self._function)
        self._wants_ctx = wants_context(self._function)

    async def run(self, ctx: TaskContext, task_xml: bytes) -> TaskOutcome:
        started = time.monotonic()
        try:
            output = await asyncio.wait_for(self._call(ctx, task_xml), self._timeout_s)
            output = check_size(_as_bytes(output), self._max_result_bytes)  # before parsing it
            result = check_size(normalise_result(task_xml, output), self._max_result_bytes)
        except TimeoutError:
            error = f"{self.target} ran past VNAS_TASK_TIMEOUT_MS ({int(self._timeout_s * 1000)} ms)"
            return TaskOutcome.failed(error, elapsed_ms(started))
        except (TaskFailed, ResultTooLarge) as exc:
            return TaskOutcome.failed(f"{self.target}: {exc}", elapsed_ms(started))
        except Exception as exc:
            # The exception's text may quote the task: the traceback is for DEBUG only.
            log.warning("in-process executor raised %s", type(exc).__name__, extra={"fields": ctx.log_fields()})
            log.debug("in-process executor raised", exc_info=True, extra={"fields": ctx.log_fields()})
            error = errortext.compose(f"{self.target} raised {type(exc).__name__}", f"{type(exc).__name__}: {exc}")
            return TaskOutcome.failed(error, elapsed_ms(started))
        return TaskOutcome(True, result, elapsed_ms(started))

    async def aclose(self) -> None:
        """Nothing outlives a task here."""

    def _call(self, ctx: TaskContext, task_xml: bytes) -> Awaitable[Any]:
        args: tuple[Any, ...] = (task_xml, ctx) if self._wants_ctx else (task_xml,)
        if self._is_async:
            return self._function(*args)  # type: ignore[no-any-return]
        return asyncio.to_thread(self._function, *args)


def _as_bytes(output: Any) -> bytes:
    try:
        return as_result_bytes(output)
    except BadReturn as exc:
        raise TaskFailed(str(exc)) from None


def wants_context(function: Callable[..., Any]) -> bool:
    try:
        params = list(inspect.signature(function).parameters.values())
    except (TypeError, ValueError):
        return False
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 2 or any(p.kind == p.VAR_POSITIONAL for p in params)


def load_function(target: str) -> Callable[..., Any]:
    """Import `package.module:function`; a failure is a configuration error naming VNAS_EXECUTOR."""
    module_name, _, attribute = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise ConfigError(f"VNAS_EXECUTOR: cannot import {module_name!r}: {exc}") from exc
    function = getattr(module, attribute, None)
    if not callable(function):
        raise ConfigError(f"VNAS_EXECUTOR: {module_name!r} has no callable {attribute!r}")
    return function  # type: ignore[no-any-return]
