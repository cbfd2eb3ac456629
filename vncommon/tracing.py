"""OpenTelemetry spans of a request across the mesh, and the W3C trace context that links them.

Off unless `vncommon.tracing_setup` installed a tracer provider (OTEL_TRACES_EXPORTER, see
docs/configuration.md). While off every hook returns one shared no-op object after a single boolean
test: no span is made, no attribute formatted, no context read.

How a request's spans connect (docs/operations.md, "Tracing"):
- trace id: derived from the request's `trace_id` (`otel_trace_id`), so a span of any service can be
  found from the id in the logs, and services that lost the parent still land in the same trace;
- parent links: the W3C `traceparent` travels in gRPC metadata (gateway -> vnapi Submit, vnapi ->
  vnvs Orchestrate, added by `client_interceptors`) and in the `traceparent` field of the ingest and
  dispatch stream entries (vnapi Submit -> ingest, vnvs group -> vnas task attempt).
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any

import grpc
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from vncommon.spans import NO_SPAN, Attached, LiveSpan, NoSpan, RecordedSpan, SpanRecorder

TRACEPARENT = "traceparent"  # the W3C header name: gRPC metadata key and stream field alike
_PROPAGATOR = TraceContextTextMapPropagator()
_W3C_TRACE_ID_CHARS = 32

# The one switch the hooks test; set by `tracing_setup.install` (and back by `uninstall`).
_active = False
_tracer: trace.Tracer = trace.NoOpTracer()
_recorder: SpanRecorder | None = None
# The trace id a span started without a parent takes (read by tracing_setup's id generator).
root_trace_id: ContextVar[int] = ContextVar("vn_root_trace_id", default=0)


def enabled() -> bool:
    return _active


def activate(tracer: trace.Tracer | None, recorder: SpanRecorder | None = None) -> None:
    """Hooks create spans with `tracer` from now on, and task attempts with `recorder` when given; None
    switches them off again."""
    global _active, _tracer, _recorder
    _active = tracer is not None
    _tracer = tracer if tracer is not None else trace.NoOpTracer()
    _recorder = recorder if tracer is not None else None


def otel_trace_id(trace_id: str) -> int:
    """The 128-bit W3C trace id of a mesh trace id: the id itself when it is 32 lowercase hex digits
    (as the ids the mesh generates are), else the first 16 bytes of its BLAKE2b digest."""
    if len(trace_id) == _W3C_TRACE_ID_CHARS:
        try:
            value = int(trace_id, 16)
        except ValueError:
            value = 0
        if value and trace_id == trace_id.lower():
            return value
    return int.from_bytes(hashlib.blake2b(trace_id.encode(), digest_size=16).digest(), "big")


def _start(name: str, trace_id: str, parent: otel_context.Context | None, kind: SpanKind,
           attributes: Mapping[str, str | int | bool]) -> LiveSpan:
    """A span under `parent` (a remote context), else under the current span, else a root whose
    trace id is derived from the request's `trace_id`."""
    if parent is not None and trace.get_current_span(parent).get_span_context().is_valid:
        return LiveSpan(_tracer.start_span(name, parent, kind, attributes))
    if trace.get_current_span().get_span_context().is_valid:
        return LiveSpan(_tracer.start_span(name, None, kind, attributes))
    token = root_trace_id.set(otel_trace_id(trace_id))
    try:
        return LiveSpan(_tracer.start_span(name, otel_context.Context(), kind, attributes))
    finally:
        root_trace_id.reset(token)


def _from_traceparent(traceparent: str) -> otel_context.Context | None:
    return _remote_context(traceparent) if traceparent else None


@functools.lru_cache(maxsize=1024)
def _remote_context(traceparent: str) -> otel_context.Context:
    """The parsed `traceparent`, kept: a worker meets the same one for every task of a group (contexts
    are immutable, so sharing one is safe)."""
    return _PROPAGATOR.extract({TRACEPARENT: traceparent})


def _from_metadata(context: grpc.aio.ServicerContext) -> otel_context.Context | None:
    metadata = context.invocation_metadata() or ()
    return _from_traceparent(next((str(value) for key, value in metadata if key == TRACEPARENT), ""))


def current_traceparent() -> str:
    """The current span as a `traceparent` value for a stream field; "" when off or outside a span."""
    if not _active:
        return ""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier.get(TRACEPARENT, "")


# -- the spans of a request, in the order it meets them ------------------------------------------------

def w3c_trace_id(traceparent: str) -> str:
    """The trace id of a valid W3C `traceparent` value as 32 hex digits; "" for anything else."""
    if not traceparent:
        return ""
    span_context = trace.get_current_span(_PROPAGATOR.extract({TRACEPARENT: traceparent})).get_span_context()
    return f"{span_context.trace_id:032x}" if span_context.is_valid else ""


def gateway_span(trace_id: str, sync: bool, traceparent: str = "") -> NoSpan:
    """The root span of a REST submission; a child of the caller's span when it sent a `traceparent`."""
    if not _active:
        return NO_SPAN
    return _start("gateway POST /valuation", trace_id, _from_traceparent(traceparent), SpanKind.SERVER,
                  {"vn.sync": sync})


def submit_span(context: grpc.aio.ServicerContext, trace_id: str, sync: bool) -> NoSpan:
    """vnapi's Submit: under the caller's span when its metadata carries one, else the request's root."""
    if not _active:
        return NO_SPAN
    return _start("vnapi.Submit", trace_id, _from_metadata(context), SpanKind.SERVER, {"vn.sync": sync})


def ingest_span(traceparent: str, trace_id: str, request_id: str) -> NoSpan:
    """vnapi's ingest consumer handing the request to vnvs (under Submit, by the ingest entry)."""
    if not _active:
        return NO_SPAN
    return _start("vnapi.ingest", trace_id, _from_traceparent(traceparent), SpanKind.CONSUMER,
                  {"vn.request_id": request_id})


def orchestrate_parent(context: grpc.aio.ServicerContext) -> NoSpan:
    """Makes the caller's span (from Orchestrate's metadata) current, so the run started inside,
    which copies the context, gets it as its parent. No span of its own."""
    if not _active:
        return NO_SPAN
    parent = _from_metadata(context)
    return Attached(parent) if parent is not None else NO_SPAN


def run_span(request_id: str, trace_id: str) -> NoSpan:
    """vnvs driving one request (under Orchestrate's caller; a root of the same trace when adopted)."""
    if not _active:
        return NO_SPAN
    return _start("vnvs.request", trace_id, None, SpanKind.INTERNAL, {"vn.request_id": request_id})


def group_span(group_index: int, trace_id: str) -> NoSpan:
    if not _active:
        return NO_SPAN
    return _start("vnvs.group", trace_id, None, SpanKind.PRODUCER, {"vn.group_index": group_index})


def hydration_span(group_index: int, trace_id: str) -> NoSpan:
    """A hydration call into the sandbox; group index -1 is the whole-document pass before the groups."""
    if not _active:
        return NO_SPAN
    return _start("vnvs.hydration", trace_id, None, SpanKind.INTERNAL, {"vn.group_index": group_index})


def assembly_span(trace_id: str) -> NoSpan:
    if not _active:
        return NO_SPAN
    return _start("vnvs.assembly", trace_id, None, SpanKind.INTERNAL, {})


def task_attempt_span(dispatch: Any, consumer: str) -> NoSpan:
    """One attempt of one task on a vnas worker, under its group's span (the dispatch entry's
    `traceparent`); `dispatch` is a vn.v1.TaskDispatch."""
    if not _active:
        return NO_SPAN
    attributes: dict[str, str | int | bool] = {
        "vn.request_id": dispatch.request_id, "vn.group_index": dispatch.group_index,
        "vn.task_id": dispatch.task_id, "vn.attempt": dispatch.attempt or 1,
        "vn.valuation": dispatch.valuation_name, "vn.consumer": consumer}
    parent = _from_traceparent(dispatch.traceparent)
    if _recorder is not None:
        return RecordedSpan(_recorder, "vnas.task", dispatch.trace_id, parent, SpanKind.CONSUMER, attributes)
    return _start("vnas.task", dispatch.trace_id, parent, SpanKind.CONSUMER, attributes)


# -- gRPC client side: the current span travels in each call's metadata ------------------------------

class _TraceMetadata:
    @staticmethod
    def _with_traceparent(details: Any) -> Any:
        traceparent = current_traceparent()
        if not traceparent:
            return details
        return details._replace(metadata=grpc.aio.Metadata(*(details.metadata or ()), (TRACEPARENT, traceparent)))


class _UnaryTrace(_TraceMetadata, grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(self._with_traceparent(details), request)


def client_interceptors() -> list[Any]:
    """Interceptors sending the current span as `traceparent` metadata; none while tracing is off
    (a channel made while off never sends it)."""
    return [_UnaryTrace()] if _active else []
