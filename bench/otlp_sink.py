"""An OTLP/gRPC trace receiver that keeps what it is sent: the collector stand-in of the tracing-on
benchmark (`python -m bench.otlp_sink PORT` drops spans, counting them) and of the cross-process
tracing test (spans kept in memory)."""

from __future__ import annotations

import asyncio
import signal
import sys
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.trace.v1 import trace_pb2


class OtlpSink(trace_service_pb2_grpc.TraceServiceServicer):  # type: ignore[misc]
    def __init__(self, keep: bool) -> None:
        self.keep = keep
        self.count = 0
        self.spans: list[tuple[str, trace_pb2.Span]] = []  # (service.name, span)

    async def Export(self, request: trace_service_pb2.ExportTraceServiceRequest, context: Any
                     ) -> trace_service_pb2.ExportTraceServiceResponse:
        for resource_spans in request.resource_spans:
            service = next((a.value.string_value for a in resource_spans.resource.attributes
                            if a.key == "service.name"), "")
            for scope_spans in resource_spans.scope_spans:
                self.count += len(scope_spans.spans)
                if self.keep:
                    self.spans.extend((service, span) for span in scope_spans.spans)
        return trace_service_pb2.ExportTraceServiceResponse()


async def start_sink(port: int, keep: bool) -> tuple[grpc.aio.Server, OtlpSink]:
    server = grpc.aio.server()
    sink = OtlpSink(keep)
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(sink, server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    return server, sink


async def _main(port: int) -> None:
    server, sink = await start_sink(port, keep=False)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(1)
    print(f"otlp sink received {sink.count} spans", file=sys.stderr)


if __name__ == "__main__":
    asyncio.run(_main(int(sys.argv[1])))
