"""`make bench SCENARIO=tracing-hooks`: what tracing adds to one 2 x 10 request, measured in process.

The mesh benchmarks on a shared 2-core machine move by more than the effect; this isolates it. It runs
the hooks one request meets (Submit, ingest, run, 3 hydrations, 2 groups, 20 task attempts, assembly,
the traceparent of every stream entry and call) with tracing off, and on with the SDK's batch processor
and an exporter that encodes every span as OTLP protobuf and drops the bytes (the work a service does
before the network). CPU time includes the export thread. Compare with `cpu_ms_per_request` of
`concurrent-2x10`, the whole mesh's CPU for the same request.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from vn.v1 import streams_pb2
from vncommon import tracing, tracing_setup
from vncommon.streams import from_fields, to_fields
from vncommon.trace import fresh_trace_id
from vnvs.dispatch import TaskRef

REQUESTS = 2000
GROUPS, TASKS = 2, 10


class EncodingExporter(SpanExporter):
    """Encodes each batch as an OTLP export request, as the OTLP exporter does, and drops it."""

    def __init__(self) -> None:
        self.bytes = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.bytes += len(encode_spans(spans).SerializeToString())
        return SpanExportResult.SUCCESS


class _Call:
    """What the Submit hook reads of a gRPC call: its metadata."""

    def __init__(self, traceparent: str) -> None:
        self._metadata = (("traceparent", traceparent),) if traceparent else ()

    def invocation_metadata(self) -> Any:
        return self._metadata


def one_request(index: int) -> None:
    trace_id = fresh_trace_id()  # as the mesh generates them (samplers read their low bits)
    with tracing.submit_span(_Call(""), trace_id, True):  # type: ignore[arg-type]
        ingest_parent = tracing.current_traceparent()
    with tracing.ingest_span(ingest_parent, trace_id, trace_id):
        orchestrate_parent = tracing.current_traceparent()  # what the client interceptor sends
    with tracing.orchestrate_parent(_Call(orchestrate_parent)), tracing.run_span(trace_id, trace_id):  # type: ignore[arg-type]
        with tracing.hydration_span(-1, trace_id):
            pass
        for group in range(GROUPS):
            with tracing.group_span(group, trace_id):
                with tracing.hydration_span(group, trace_id):
                    pass
                traceparent = tracing.current_traceparent()
                for task in range(1, TASKS + 1):
                    fields = to_fields(TaskRef(trace_id, group, "g", str(task), "v", trace_id, traceparent).entry(1, 3))
                    dispatch = from_fields(streams_pb2.TaskDispatch, fields)  # type: ignore[arg-type]
                    with tracing.task_attempt_span(dispatch, "vnas-1") as span:
                        span.outcome("completed")
        with tracing.assembly_span(trace_id):
            pass


def entries_only(index: int) -> None:
    """The same request without a hook: only the stream entries' own work, to subtract."""
    trace_id = fresh_trace_id()  # as the mesh generates them (samplers read their low bits)
    for group in range(GROUPS):
        for task in range(1, TASKS + 1):
            fields = to_fields(TaskRef(trace_id, group, "g", str(task), "v", trace_id, "").entry(1, 3))
            from_fields(streams_pb2.TaskDispatch, fields)  # type: ignore[arg-type]


def _cpu_ms_per_request(request: Callable[[int], None] = one_request) -> float:
    for index in range(100):  # warm-up
        request(index)
    started = time.process_time()
    for index in range(REQUESTS):
        request(index)
    tracing_setup.shutdown()  # flushes the batch processor: its thread's CPU is counted
    return (time.process_time() - started) * 1000 / REQUESTS


def run() -> dict[str, float]:
    tracing_setup.shutdown()
    bare = _cpu_ms_per_request(entries_only)
    off = _cpu_ms_per_request()
    exporter = EncodingExporter()
    tracing_setup.install([exporter], "bench")
    on = _cpu_ms_per_request()
    return {"off_added_cpu_ms_per_request": off - bare, "off_cpu_ms_per_request": off, "on_cpu_ms_per_request": on,
            "on_added_cpu_ms_per_request": on - off, "otlp_bytes_per_request": exporter.bytes / (REQUESTS + 100)}
