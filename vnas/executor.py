"""Running one task: the executor protocol, the in-process Python executor and result normalisation.

Every executor (script or Python) ends in `normalise_result`, so the legacy number form, the XML forms
and their errors behave the same whichever way a task was run (SPEC section 9).
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Protocol

from lxml import etree

from vnas.limits import ResultTooLarge, check_size
from vnas.settings import DEFAULT_MAX_RESULT_BYTES, VnasSettings
from vncommon import errortext
from vncommon.errors import ConfigError, MalformedXml
from vncommon.xmlsafe import parse_xml, serialize

log = logging.getLogger(__name__)

_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_PREVIEW_CHARS = 40
PRICE_PATH = ("analytics", "price", "amount")
CENT = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class TaskContext:
    """Who a task is: the fields of its dispatch entry that scripts and logs see."""

    request_id: str
    group_index: int
    task_id: str
    attempt: int = 1
    valuation_name: str = ""
    trace_id: str = ""

    def log_fields(self) -> dict[str, Any]:
        return {"requestId": self.request_id, "groupIndex": self.group_index, "taskId": self.task_id,
                "traceId": self.trace_id or None, "attempt": self.attempt}


@dataclass(frozen=True, slots=True)
class TaskOutcome:
    """What one attempt produced; a failed attempt is an outcome, never an exception."""

    completed: bool
    result_xml: bytes = b""
    duration_ms: int = 0
    error: str = ""

    @classmethod
    def failed(cls, error: str, duration_ms: int = 0) -> TaskOutcome:
        return cls(completed=False, duration_ms=duration_ms, error=error)


class TaskFailed(Exception):
    """One attempt failed; the message is the error reported on the update stream."""


class Executor(Protocol):
    """Runs one task XML to an outcome under the task timeout."""

    async def run(self, ctx: TaskContext, task_xml: bytes) -> TaskOutcome: ...


def elapsed_ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def normalise_result(task_xml: bytes, output: bytes) -> bytes:
    """Turn executor output into result XML: a number goes into the task's price, XML is checked."""
    text = output.strip()
    if not text:
        raise TaskFailed("output is empty; expected result XML or a single positive number")
    if text.startswith(b"<"):
        return _checked_result_xml(text)
    try:
        decoded = text.decode("utf-8")
    except UnicodeDecodeError:
        raise TaskFailed(f"output is neither XML nor a number ({len(text)} bytes, not UTF-8)") from None
    if _NUMBER.match(decoded):
        return price_into_task(task_xml, Decimal(decoded))
    raise TaskFailed(errortext.compose(f"output is neither XML nor a single number ({len(text)} bytes)",
                                       f"output starts with {decoded[:_PREVIEW_CHARS]!r}"))


def _checked_result_xml(data: bytes) -> bytes:
    try:
        root = parse_xml(data, what="result")
    except MalformedXml as exc:
        raise TaskFailed(errortext.compose("output is not valid XML", exc.message)) from None
    if local_name(root) != "valuation" and find_valuation(root) is None:
        raise TaskFailed(f"result XML must be a task document with project/group/valuation or a bare "
                         f"<valuation>; got root <{local_name(root)}>")
    return serialize(root)


def price_into_task(task_xml: bytes, value: Decimal) -> bytes:
    """The legacy number form: the whole task document with the price written with 2 decimals.

    Decimal arithmetic rounds half up on the printed digits (100.125 -> 100.13), as a price should.
    """
    if not value.is_finite() or value <= 0:
        raise TaskFailed(f"output number {value} is not positive; a price must be > 0")
    try:
        root = parse_xml(task_xml, what="task XML")
    except MalformedXml as exc:
        raise TaskFailed(f"cannot write the price: {exc.message}") from None
    valuation = root if local_name(root) == "valuation" else find_valuation(root)
    if valuation is None:
        raise TaskFailed("cannot write the price: the task XML has no project/group/valuation")
    amount = _ensure_path(valuation, PRICE_PATH)
    try:
        amount.text = str(value.quantize(CENT, rounding=ROUND_HALF_UP))
    except InvalidOperation:
        raise TaskFailed(f"output number {value} is too large for a price") from None
    return serialize(root)


def find_valuation(root: etree._Element) -> etree._Element | None:
    """The task's valuation: project/group/valuation under the root (namespace-agnostic)."""
    for project in _children(root, "project"):
        for group in _children(project, "group"):
            for valuation in _children(group, "valuation"):
                return valuation
    return None


def _ensure_path(parent: etree._Element, path: tuple[str, ...]) -> etree._Element:
    """The first element along `path`, creating what is missing (a task may omit analytics)."""
    node = parent
    for name in path:
        existing = next(iter(_children(node, name)), None)
        node = existing if existing is not None else etree.SubElement(node, name)
    return node


def _children(parent: etree._Element, name: str) -> list[etree._Element]:
    return [child for child in parent if isinstance(child.tag, str) and local_name(child) == name]


def local_name(element: etree._Element) -> str:
    return etree.QName(element).localname


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
        self._wants_ctx = _wants_context(self._function)

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

    def _call(self, ctx: TaskContext, task_xml: bytes) -> Awaitable[Any]:
        args: tuple[Any, ...] = (task_xml, ctx) if self._wants_ctx else (task_xml,)
        if self._is_async:
            return self._function(*args)  # type: ignore[no-any-return]
        return asyncio.to_thread(self._function, *args)


def _as_bytes(output: Any) -> bytes:
    if isinstance(output, bytes):
        return output
    if isinstance(output, str):
        return output.encode("utf-8")
    if isinstance(output, (int, float)) and not isinstance(output, bool):
        return repr(output).encode()
    raise TaskFailed(f"returned {type(output).__name__}; expected XML (bytes or str) or a number")


def _wants_context(function: Callable[..., Any]) -> bool:
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


def build_executor(settings: VnasSettings, base_env: Mapping[str, str] | None = None) -> Executor:
    """The executor the settings name: a script (VNAS_SCRIPT) or a Python function (VNAS_EXECUTOR)."""
    if settings.script:
        from vnas.script import ScriptExecutor

        # The worker's own executor: it adopts what scripts leave behind (vnas.reaper).
        return ScriptExecutor(settings.script, settings.task_timeout_s, base_env, allow_env=settings.script_env,
                              max_result_bytes=settings.result_limit, adopt_orphans=True)
    if settings.executor:
        return PythonExecutor(settings.executor, settings.task_timeout_s, settings.result_limit)
    raise ConfigError("set exactly one of VNAS_SCRIPT or VNAS_EXECUTOR")
