"""vncommon.tracing and its settings: the OTEL_* rules, the trace id rule, and what the hooks do while off."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.conftest import ROOT
from vn.v1 import streams_pb2
from vncommon import tracing, tracing_setup
from vncommon.errors import ConfigError
from vncommon.service import EXIT_CONFIG
from vncommon.streams import from_fields, to_fields
from vncommon.trace import fresh_trace_id
from vnvs.dispatch import TaskRef


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    tracing_setup.install([exporter], "vnml-test", batch=False)
    yield exporter
    tracing_setup.shutdown()


def test_tracing_is_off_by_default_and_when_the_sdk_is_disabled() -> None:
    assert not tracing_setup.TracingSettings.from_env({}, "vnapi").enabled
    assert not tracing_setup.TracingSettings.from_env({"OTEL_TRACES_EXPORTER": "none"}, "vnapi").enabled
    disabled = {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SDK_DISABLED": "TRUE"}
    assert not tracing_setup.TracingSettings.from_env(disabled, "vnapi").enabled


def test_settings_name_the_exporters_the_service_and_the_endpoint() -> None:
    settings = tracing_setup.TracingSettings.from_env(
        {"OTEL_TRACES_EXPORTER": "otlp, console,otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317",
         "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://traces:4317"}, "vnvs")
    assert settings.exporters == ("otlp", "console")
    assert settings.service_name == "vnvs"
    assert settings.otlp_endpoint == "https://traces:4317"
    named = tracing_setup.TracingSettings.from_env({"OTEL_SERVICE_NAME": "vnvs-eu"}, "vnvs")
    assert named.service_name == "vnvs-eu"


@pytest.mark.parametrize(("name", "value", "says"), [
    ("OTEL_TRACES_EXPORTER", "jaeger", "'jaeger'; use otlp, console or none"),
    ("OTEL_SDK_DISABLED", "yes", "must be true or false"),
    ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf", "is not supported; use grpc"),
    ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4317", "must start with http:// or https://"),
])
def test_a_bad_otel_setting_is_refused_naming_it(name: str, value: str, says: str) -> None:
    with pytest.raises(ConfigError, match=name) as caught:
        tracing_setup.TracingSettings.from_env({name: value}, "vnapi")
    assert says in str(caught.value)


def test_a_service_with_a_bad_otel_setting_exits_with_the_config_code() -> None:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "OTEL_TRACES_EXPORTER": "zipkin"}
    done = subprocess.run([sys.executable, "-m", "vnapi"], env=env, capture_output=True, timeout=30, cwd=ROOT)
    assert done.returncode == EXIT_CONFIG
    assert b"OTEL_TRACES_EXPORTER" in done.stderr


def test_a_generated_trace_id_is_the_w3c_trace_id_and_any_other_is_hashed() -> None:
    assert tracing.otel_trace_id("0123456789abcdef0123456789abcdef") == 0x0123456789ABCDEF0123456789ABCDEF
    for other in ("order-42", "0123456789ABCDEF0123456789ABCDEF", "0" * 32, "g" * 32):
        derived = tracing.otel_trace_id(other)
        assert 0 < derived < 2**128
        assert derived == tracing.otel_trace_id(other)  # every service derives the same one
    assert tracing.otel_trace_id("order-42") != tracing.otel_trace_id("order-43")


def test_while_off_every_hook_is_the_shared_no_op_and_nothing_travels() -> None:
    assert not tracing.enabled()
    dispatch = streams_pb2.TaskDispatch(request_id="r", trace_id="t", attempt=2)
    hooks = [tracing.gateway_span("t", True), tracing.run_span("r", "t"), tracing.group_span(0, "t"),
             tracing.hydration_span(-1, "t"), tracing.assembly_span("t"), tracing.ingest_span("", "t", "r"),
             tracing.task_attempt_span(dispatch, "worker")]
    assert all(hook is tracing.NO_SPAN for hook in hooks)
    with tracing.group_span(0, "t") as span:
        span.outcome("failed", "boom")
        assert tracing.current_traceparent() == ""
    assert tracing.client_interceptors() == []
    entry = TaskRef("r", 0, "g", "1", "v", "t").entry(1, 3)
    assert entry.traceparent == "" and "traceparent" not in to_fields(entry)  # entries as they were


def test_a_span_without_a_parent_is_a_root_of_the_requests_trace(exporter: InMemorySpanExporter) -> None:
    with tracing.run_span("r", "order-42"), tracing.group_span(0, "order-42"):
        traceparent = tracing.current_traceparent()
    run, group = sorted(exporter.get_finished_spans(), key=lambda span: span.name, reverse=True)
    assert run.parent is None and run.context is not None and group.parent is not None
    assert run.context.trace_id == tracing.otel_trace_id("order-42")
    assert group.parent.span_id == run.context.span_id
    assert group.context is not None
    assert traceparent == f"00-{group.context.trace_id:032x}-{group.context.span_id:016x}-01"


def test_a_task_attempt_is_a_child_of_the_group_named_in_its_entry(exporter: InMemorySpanExporter) -> None:
    with tracing.group_span(1, "t1"):
        entry = TaskRef("r", 1, "g", "7", "v", "t1", tracing.current_traceparent()).entry(3, 5)
    fields = to_fields(entry)
    assert str(fields["traceparent"]).startswith("00-")
    entry = from_fields(streams_pb2.TaskDispatch, {str(k): str(v) for k, v in fields.items()})  # as workers do
    with tracing.task_attempt_span(entry, "worker-9") as span:
        span.outcome("failed", "ValueError: no curve\nTraceback and script output")
    group, attempt = sorted(exporter.get_finished_spans(), key=lambda s: s.name, reverse=True)
    assert attempt.name == "vnas.task" and group.context is not None and attempt.parent is not None
    assert attempt.parent.span_id == group.context.span_id
    assert dict(attempt.attributes or {}) == {
        "vn.request_id": "r", "vn.group_index": 1, "vn.task_id": "7", "vn.attempt": 3, "vn.valuation": "v",
        "vn.consumer": "worker-9", "vn.outcome": "failed"}
    assert attempt.status.description == "ValueError: no curve"  # the first line only


def _dispatch(traceparent: str, trace_id: str = "t1") -> streams_pb2.TaskDispatch:
    return streams_pb2.TaskDispatch(request_id="r", group_index=0, task_id="1", attempt=1, valuation_name="v",
                                    trace_id=trace_id, traceparent=traceparent)


def test_a_task_attempt_span_is_made_like_the_tracers_spans(exporter: InMemorySpanExporter) -> None:
    with tracing.group_span(0, "t1"):
        traceparent = tracing.current_traceparent()
    with tracing.task_attempt_span(_dispatch(traceparent), "worker-1") as span:
        span.outcome("completed")
    group, attempt = sorted(exporter.get_finished_spans(), key=lambda s: s.name, reverse=True)
    assert attempt.resource == group.resource and attempt.resource.attributes["service.name"] == "vnml-test"
    assert attempt.instrumentation_scope == group.instrumentation_scope
    assert attempt.context is not None and group.context is not None
    assert attempt.context.trace_id == group.context.trace_id and attempt.context.span_id != group.context.span_id
    assert attempt.context.trace_flags.sampled and attempt.status.is_ok
    assert attempt.start_time is not None and attempt.end_time is not None
    assert group.end_time is not None and group.end_time <= attempt.start_time <= attempt.end_time


def test_a_task_attempt_without_its_groups_context_is_a_root_of_the_requests_trace(
        exporter: InMemorySpanExporter) -> None:
    with tracing.task_attempt_span(_dispatch("", trace_id="order-7"), "worker-1"):
        pass
    (attempt,) = exporter.get_finished_spans()
    assert attempt.parent is None and attempt.context is not None
    assert attempt.context.trace_id == tracing.otel_trace_id("order-7")


def test_a_task_attempt_left_by_an_exception_records_it(exporter: InMemorySpanExporter) -> None:
    with pytest.raises(RuntimeError), tracing.task_attempt_span(_dispatch(""), "worker-1"):
        raise RuntimeError("executor broke")
    (attempt,) = exporter.get_finished_spans()
    assert attempt.status.description == "RuntimeError: executor broke"
    assert attempt.events[0].name == "exception"
    assert attempt.events[0].attributes is not None
    assert attempt.events[0].attributes["exception.type"] == "RuntimeError"


def test_a_task_attempt_follows_its_groups_sampling_decision(exporter: InMemorySpanExporter) -> None:
    not_sampled = f"00-{'ab' * 16}-{'cd' * 8}-00"
    with tracing.task_attempt_span(_dispatch(not_sampled), "worker-1"):
        pass
    with tracing.task_attempt_span(_dispatch(not_sampled[:-2] + "01"), "worker-1"):
        pass
    (attempt,) = exporter.get_finished_spans()
    assert attempt.parent is not None and attempt.parent.span_id == int("cd" * 8, 16)


def test_a_span_left_by_an_exception_records_it(exporter: InMemorySpanExporter) -> None:
    with pytest.raises(KeyError), tracing.assembly_span("t"):
        raise KeyError("missing")
    (span,) = exporter.get_finished_spans()
    assert not span.status.is_ok and span.events[0].name == "exception"


def test_generated_trace_ids_are_sampled_at_the_configured_ratio(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")  # read by the SDK itself
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0.25")
    exporter = InMemorySpanExporter()
    tracing_setup.install([exporter], "vnml-test", batch=False)
    try:
        for _ in range(2000):
            with tracing.run_span("r", fresh_trace_id()):
                pass
    finally:
        tracing_setup.shutdown()
    assert 400 < len(exporter.get_finished_spans()) < 600  # 500 expected; a UUID4's fixed bits give 0
