"""The span objects the tracing hooks (`vncommon.tracing`) hand out: one shared no-op while tracing is off,
a live SDK span, a span recorded as plain values (task attempts), and a remote context made current."""

from __future__ import annotations

import time
from types import TracebackType
from typing import Protocol

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from vncommon import errortext


class SpanRecorder(Protocol):
    """Hands a finished span to the span processors without the SDK's live span (`tracing_setup`)."""

    def record(self, name: str, trace_id: str, parent: otel_context.Context | None, kind: SpanKind,
               attributes: dict[str, str | int | bool], start_ns: int, error: str,
               exception: BaseException | None) -> None: ...


class NoSpan:
    """What every hook returns while tracing is off."""

    __slots__ = ()

    def __enter__(self) -> NoSpan:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        return None

    def set(self, key: str, value: str | int | bool) -> None:
        return None

    def outcome(self, status: str, error: str = "") -> None:
        return None


NO_SPAN = NoSpan()


class LiveSpan(NoSpan):
    """A started span that is the current one between enter and exit, ended on exit."""

    __slots__ = ("_span", "_token")

    def __init__(self, span: trace.Span) -> None:
        self._span = span
        self._token: object = None

    def __enter__(self) -> LiveSpan:
        self._token = otel_context.attach(trace.set_span_in_context(self._span))
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if isinstance(exc, Exception):  # a cancellation is not the span's failure
            self._span.record_exception(exc)
            self._span.set_status(Status(StatusCode.ERROR, _failure_text(exc)))
        otel_context.detach(self._token)  # type: ignore[arg-type]
        self._span.end()

    def set(self, key: str, value: str | int | bool) -> None:
        self._span.set_attribute(key, value)

    def outcome(self, status: str, error: str = "") -> None:
        self._span.set_attribute("vn.outcome", status)
        if error:  # its first line only, as in the logs: what follows may quote a script's output
            self._span.set_status(Status(StatusCode.ERROR, errortext.summary(error)))


class RecordedSpan(NoSpan):
    """A span kept as plain values while it runs and handed over whole when it ends: for the span every
    task attempt makes on a worker, where the SDK's live span (attribute checks on every set, a context
    attached and detached, a copy made at its end) cost more than the rest of the hooks together. It is
    never the current span: nothing runs under a task attempt."""

    __slots__ = ("_attributes", "_error", "_kind", "_name", "_parent", "_recorder", "_start", "_trace_id")

    def __init__(self, recorder: SpanRecorder, name: str, trace_id: str, parent: otel_context.Context | None,
                 kind: SpanKind, attributes: dict[str, str | int | bool]) -> None:
        self._recorder = recorder
        self._name = name
        self._trace_id = trace_id
        self._parent = parent
        self._kind = kind
        self._attributes = attributes
        self._start = 0
        self._error = ""

    def __enter__(self) -> RecordedSpan:
        self._start = time.time_ns()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        failure = exc if isinstance(exc, Exception) else None  # a cancellation is not the span's failure
        error = _failure_text(failure) if failure is not None else self._error
        self._recorder.record(self._name, self._trace_id, self._parent, self._kind, self._attributes, self._start,
                              error, failure)

    def set(self, key: str, value: str | int | bool) -> None:
        self._attributes[key] = value

    def outcome(self, status: str, error: str = "") -> None:
        self._attributes["vn.outcome"] = status
        if error:  # its first line only, as in the logs: what follows may quote a script's output
            self._error = errortext.summary(error)


class Attached(NoSpan):
    __slots__ = ("_context", "_token")

    def __init__(self, context: otel_context.Context) -> None:
        self._context = context
        self._token: object = None

    def __enter__(self) -> Attached:
        self._token = otel_context.attach(self._context)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        otel_context.detach(self._token)  # type: ignore[arg-type]


def _failure_text(exc: Exception) -> str:
    """A failed span's status description: the exception's type and message, cut to 200 characters."""
    return f"{type(exc).__name__}: {exc}"[:200]
