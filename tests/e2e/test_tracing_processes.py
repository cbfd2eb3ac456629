"""Tracing configured the standard way (OTEL_* variables) in a mesh of separate processes: each service
exports over OTLP/gRPC to a receiver in the test, and one REST request's spans from all four services
form one trace whose every parent is among them."""

from __future__ import annotations

import asyncio

import aiohttp

from bench.otlp_sink import start_sink
from tests.e2e.conftest import MeshFactory
from tests.e2e.helpers import simple_request
from vncommon import tracing
from vncommon.localmesh import free_port

TRACE_ID = "0123456789abcdef0123456789abcdef"  # 32 lowercase hex digits: used as the W3C trace id itself


async def test_spans_of_every_process_form_one_trace(start_mesh: MeshFactory) -> None:
    port = free_port()
    server, sink = await start_sink(port, keep=True)
    try:
        mesh = start_mesh(workers=1, OTEL_TRACES_EXPORTER="otlp", OTEL_BSP_SCHEDULE_DELAY="100",
                          OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{port}")
        headers = {"Content-Type": "application/xml", "X-Trace-Id": TRACE_ID}
        async with aiohttp.ClientSession() as session, \
                session.post(f"{mesh.http}/valuation?sync=Y", data=simple_request(groups=2, tasks=3),
                             headers=headers) as answer:
            assert answer.status == 200, await answer.text()
        # SIGTERM: each service exports the spans it still holds before it exits, to this loop's receiver.
        await asyncio.to_thread(mesh.stop)
    finally:
        await server.stop(0)

    services = {(service, span.name) for service, span in sink.spans}
    assert {("gateway", "gateway POST /valuation"), ("vnapi", "vnapi.Submit"), ("vnapi", "vnapi.ingest"),
            ("vnvs", "vnvs.request"), ("vnvs", "vnvs.group"), ("vnas", "vnas.task")} <= services
    wanted = tracing.otel_trace_id(TRACE_ID).to_bytes(16, "big")
    spans = [span for _, span in sink.spans if span.trace_id == wanted]
    assert len(spans) == len(sink.spans)  # nothing outside the request's trace
    ids = {span.span_id for span in spans}
    assert [span.name for span in spans if not span.parent_span_id] == ["gateway POST /valuation"]
    assert all(span.parent_span_id in ids for span in spans if span.parent_span_id)
    assert sum(span.name == "vnas.task" for span in spans) == 6
