"""One request through a real mesh (gateway, vnapi, vnvs, vnas on loopback gRPC and a real Redis) yields
one connected OpenTelemetry trace. The services run in this process so they share the SDK's in-memory
exporter; the context still crosses every boundary the way it does between processes: gRPC metadata
and stream fields."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pytest
import redis.asyncio as redis
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from gateway.server import build as build_gateway
from tests.conftest import RedisServer
from tests.e2e.tracing_pricer import FLAKY_TASK
from vnapi.server import build as build_vnapi
from vnas.server import build as build_vnas
from vncommon import tracing, tracing_setup
from vncommon.localmesh import free_port
from vncommon.service import Service, serve
from vnvs.server import build as build_vnvs

REQUEST = b"""<?xml version="1.0" encoding="UTF-8"?>
<vnml>
  <project name="traced">
    <group name="price">
      <valuation name="a"><amount/></valuation>
      <valuation name="b"><amount/></valuation>
    </group>
    <group name="total">
      <valuation name="sum"><amount/></valuation>
    </group>
  </project>
</vnml>
"""
TRACE_ID = "order-42"  # not 32 hex digits: the W3C trace id is derived from it
SPANS_TIMEOUT_S = 10.0


@dataclass
class Mesh:
    exporter: InMemorySpanExporter
    http: str


@pytest.fixture
async def traced_mesh(redis_server: RedisServer, redis_client: redis.Redis) -> AsyncIterator[Mesh]:
    # redis_client starts from an empty Redis: a request an earlier test left would add a trace of its own.
    exporter = InMemorySpanExporter()
    tracing_setup.install([exporter], "vnml-test", batch=False)  # before the services make their channels
    vnapi_port, vnvs_port, http_port = free_port(), free_port(), free_port()
    common = {"REDIS_URL": redis_server.url, "LOG_LEVEL": "WARNING", "DEFAULT_BLOCK_MS": "200",
              "VNVS_RETRY_BASE_MS": "10", "VNVS_RETRY_CAP_MS": "50", "VNAPI_ADDRESS": f"127.0.0.1:{vnapi_port}",
              "VNVS_ADDRESS": f"127.0.0.1:{vnvs_port}", "SYNC_WAIT_TIMEOUT_MS": "20000"}
    services: list[Service] = [
        build_vnvs({**common, "GRPC_PORT": str(vnvs_port)}),
        build_vnas({**common, "GRPC_PORT": "0", "VNAS_CONSUMER_NAME": "worker-1",
                    "VNAS_EXECUTOR": "python:tests.e2e.tracing_pricer:flaky_once"}),
        build_vnapi({**common, "GRPC_PORT": str(vnapi_port)}),
        build_gateway({**common, "HTTP_PORT": str(http_port)}),
    ]
    stop = asyncio.Event()
    runs = []
    try:
        for service in services:
            started = asyncio.Event()
            runs.append(asyncio.create_task(serve(service, stop, started)))
            await asyncio.wait_for(started.wait(), 20)
        yield Mesh(exporter, f"http://127.0.0.1:{http_port}")
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*runs, return_exceptions=True), 30)
        tracing_setup.shutdown()


async def finished_spans(exporter: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    """All finished spans once one named `name` ended (the run's span ends after the sync answer)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SPANS_TIMEOUT_S
    while not any(span.name == name for span in exporter.get_finished_spans()):
        assert loop.time() < deadline, f"no {name} span ended within {SPANS_TIMEOUT_S}s"
        await asyncio.sleep(0.05)
    return list(exporter.get_finished_spans())


def parent_of(span: ReadableSpan, spans: list[ReadableSpan]) -> ReadableSpan:
    assert span.parent is not None, f"{span.name} has no parent"
    found = [s for s in spans if s.context is not None and s.context.span_id == span.parent.span_id]
    assert len(found) == 1, f"the parent of {span.name} is not among the spans"
    return found[0]


def named(spans: list[ReadableSpan], name: str) -> list[ReadableSpan]:
    return [span for span in spans if span.name == name]


async def test_one_request_yields_one_connected_trace(traced_mesh: Mesh) -> None:
    headers = {"Content-Type": "application/xml", "X-Trace-Id": TRACE_ID}
    async with aiohttp.ClientSession() as session, \
            session.post(f"{traced_mesh.http}/valuation?sync=Y", data=REQUEST, headers=headers) as answer:
        assert answer.status == 200, await answer.text()
    spans = await finished_spans(traced_mesh.exporter, "vnvs.request")

    assert {span.context.trace_id for span in spans if span.context} == {tracing.otel_trace_id(TRACE_ID)}
    roots = [span for span in spans if span.parent is None]
    assert [root.name for root in roots] == ["gateway POST /valuation"]
    (submit,) = named(spans, "vnapi.Submit")
    assert parent_of(submit, spans) is roots[0]
    (ingest,) = named(spans, "vnapi.ingest")
    assert parent_of(ingest, spans) is submit
    (run,) = named(spans, "vnvs.request")
    assert parent_of(run, spans) is ingest
    request_id = run.attributes["vn.request_id"] if run.attributes else None
    assert ingest.attributes and ingest.attributes["vn.request_id"] == request_id

    groups = {span.attributes["vn.group_index"]: span for span in named(spans, "vnvs.group") if span.attributes}
    assert sorted(groups) == [0, 1]
    assert all(parent_of(group, spans) is run for group in groups.values())
    (assembly,) = named(spans, "vnvs.assembly")
    assert parent_of(assembly, spans) is run
    hydrations = {(parent_of(span, spans).name, span.attributes["vn.group_index"])
                  for span in named(spans, "vnvs.hydration") if span.attributes}
    # A fresh run hydrates group 0 in the job of the whole-document pass, and says so on its span.
    assert hydrations == {("vnvs.request", -1), ("vnvs.group", 1)}
    (whole,) = [span for span in named(spans, "vnvs.hydration")
                if span.attributes and span.attributes["vn.group_index"] == -1]
    assert whole.attributes and whole.attributes["vn.first_group_hydrated"] is True

    attempts = {}
    for span in named(spans, "vnas.task"):
        attributes = dict(span.attributes or {})
        key = (attributes["vn.group_index"], attributes["vn.task_id"], attributes["vn.attempt"])
        attempts[key] = attributes["vn.outcome"]
        assert parent_of(span, spans) is groups[attributes["vn.group_index"]]
        assert attributes["vn.consumer"] == "worker-1" and attributes["vn.request_id"] == request_id
    flaky_group, flaky_task = FLAKY_TASK
    assert attempts == {(0, "1", 1): "completed", (flaky_group, flaky_task, 1): "failed",
                        (flaky_group, flaky_task, 2): "completed", (1, "1", 1): "completed"}
    (failed,) = [span for span in named(spans, "vnas.task")
                 if span.attributes and span.attributes["vn.outcome"] == "failed"]
    assert failed.status.description and "raised ValueError" in failed.status.description  # the update's error


async def test_a_callers_traceparent_makes_the_request_part_of_the_callers_trace(traced_mesh: Mesh) -> None:
    caller_trace, caller_span = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    headers = {"Content-Type": "application/xml", "traceparent": f"00-{caller_trace}-{caller_span}-01"}
    async with aiohttp.ClientSession() as session, \
            session.post(f"{traced_mesh.http}/valuation?sync=Y", data=REQUEST, headers=headers) as answer:
        assert answer.status == 200, await answer.text()
        assert answer.headers["X-Trace-Id"] == caller_trace  # the logs' trace id is the caller's too
    spans = await finished_spans(traced_mesh.exporter, "vnvs.request")

    assert {span.context.trace_id for span in spans if span.context} == {int(caller_trace, 16)}
    (root,) = named(spans, "gateway POST /valuation")
    assert root.parent is not None and root.parent.span_id == int(caller_span, 16) and root.parent.is_remote
    assert all(parent_of(span, spans) for span in spans if span is not root)
