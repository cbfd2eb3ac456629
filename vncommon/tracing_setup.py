"""Switching tracing on: the standard OTEL_* variables, checked at start, and the SDK tracer provider.

Tracing is off unless OTEL_TRACES_EXPORTER names an exporter (the SDK's own default would be `otlp`;
the mesh's is `none`, so a service never tries to reach a collector nobody runs). While off the SDK is
not even imported. The variables not listed in `TracingSettings` (OTEL_TRACES_SAMPLER, OTEL_BSP_*,
OTEL_EXPORTER_OTLP_HEADERS, _TIMEOUT, _CERTIFICATE, OTEL_RESOURCE_ATTRIBUTES, ...) are read by the SDK
itself, as it documents them.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from vncommon import tracing
from vncommon.config import env_str
from vncommon.errors import ConfigError

EXPORTERS = ("none", "otlp", "console")
PROTOCOLS = ("grpc",)
DEFAULT_OTLP_ENDPOINT = "http://localhost:4317"
SCOPE = "vnml"  # the instrumentation scope of every span the hooks make

_provider: Any = None


@dataclass(frozen=True, slots=True)
class TracingSettings:
    exporters: tuple[str, ...] = ()  # OTEL_TRACES_EXPORTER without `none`; empty: tracing off
    service_name: str = ""  # OTEL_SERVICE_NAME; default: the service's own name
    otlp_endpoint: str = DEFAULT_OTLP_ENDPOINT  # OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, else _OTLP_ENDPOINT

    @property
    def enabled(self) -> bool:
        return bool(self.exporters)

    @classmethod
    def from_env(cls, env: Mapping[str, str], service: str) -> TracingSettings:
        disabled = env_str(env, "OTEL_SDK_DISABLED", "false").lower()
        if disabled not in ("true", "false"):
            raise ConfigError(f"OTEL_SDK_DISABLED={disabled!r} must be true or false")
        names = [name.strip().lower() for name in env_str(env, "OTEL_TRACES_EXPORTER", "none").split(",")]
        unknown = [name for name in names if name not in EXPORTERS]
        if unknown:
            raise ConfigError(f"OTEL_TRACES_EXPORTER names {', '.join(unknown)!r}; use otlp, console or none")
        protocol = env_str(env, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", env_str(env, "OTEL_EXPORTER_OTLP_PROTOCOL",
                                                                              "grpc"))
        if protocol not in PROTOCOLS:
            raise ConfigError(f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r} is not supported; use grpc")
        endpoint = env_str(env, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                           env_str(env, "OTEL_EXPORTER_OTLP_ENDPOINT", DEFAULT_OTLP_ENDPOINT))
        if not endpoint.startswith(("http://", "https://")):
            raise ConfigError(f"OTEL_EXPORTER_OTLP_ENDPOINT={endpoint!r} must start with http:// or https://")
        exporters = () if disabled == "true" else tuple(dict.fromkeys(n for n in names if n != "none"))
        return cls(exporters, env_str(env, "OTEL_SERVICE_NAME", service), endpoint)


def configure(env: Mapping[str, str], service: str) -> None:
    """Read the OTEL_* settings (ConfigError naming a bad one) and install the exporters they name."""
    settings = TracingSettings.from_env(env, service)
    if settings.enabled:
        install([_exporter(name, settings) for name in settings.exporters], settings.service_name)


def _exporter(name: str, settings: TracingSettings) -> Any:
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter
        return ConsoleSpanExporter()
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    return OTLPSpanExporter(endpoint=settings.otlp_endpoint)


def install(exporters: list[Any], service_name: str, batch: bool = True) -> None:
    """A tracer provider exporting to `exporters` (batched, or each span as it ends with `batch=False`,
    as tests want) becomes the one the hooks use. Replaces an earlier one (which is shut down first)."""
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    global _provider
    shutdown()
    resource = _resource_hashed_once(Resource.create({SERVICE_NAME: service_name}))
    provider = TracerProvider(resource=resource, id_generator=_id_generator())
    processors = [BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter) for exporter in exporters]
    for processor in processors:
        provider.add_span_processor(processor)
    _provider = provider
    tracing.activate(provider.get_tracer(SCOPE), SpanRecorder(provider, processors))


class SpanRecorder:
    """Turns a span recorded as plain values (`spans.RecordedSpan`) into the SDK's finished span and
    hands it to the span processors: sampled by the provider's sampler, ids from its id generator, its
    resource and the hooks' instrumentation scope, as a span of the tracer would be."""

    def __init__(self, provider: Any, processors: list[Any]) -> None:
        # Imported here, once, not per span: the SDK is loaded only when tracing is on.
        from opentelemetry import trace
        from opentelemetry.sdk.trace import Event, ReadableSpan
        from opentelemetry.sdk.util.instrumentation import InstrumentationScope
        from opentelemetry.trace import SpanContext, Status, StatusCode, TraceFlags

        self._sampler = provider.sampler
        self._ids = provider.id_generator
        self._resource = provider.resource
        self._processors = tuple(processors)
        self._scope = InstrumentationScope(SCOPE, "")  # as `get_tracer(SCOPE)` names it
        self._readable_span = ReadableSpan
        self._event = Event
        self._current_span = trace.get_current_span
        self._span_context = SpanContext
        self._sampled = TraceFlags(TraceFlags.SAMPLED)
        self._status = Status
        self._error = StatusCode.ERROR
        self._unset = Status(StatusCode.UNSET)

    def record(self, name: str, trace_id: str, parent: Any, kind: Any, attributes: dict[str, str | int | bool],
               start_ns: int, error: str, exception: BaseException | None) -> None:
        parent_span = self._current_span(parent).get_span_context() if parent is not None else None
        if parent_span is None or not parent_span.is_valid:
            parent, parent_span = None, None
        otel_trace = parent_span.trace_id if parent_span is not None else tracing.otel_trace_id(trace_id)
        sampling = self._sampler.should_sample(parent, otel_trace, name, kind, attributes)
        if not sampling.decision.is_sampled():
            return
        if sampling.attributes:
            attributes.update(sampling.attributes)
        context = self._span_context(otel_trace, self._ids.generate_span_id(), is_remote=False,
                                     trace_flags=self._sampled, trace_state=sampling.trace_state)
        end_ns = time.time_ns()
        events = (self._exception_event(exception, end_ns),) if exception is not None else ()
        span = self._readable_span(
            name, context, parent_span, self._resource, attributes, events, (), kind,
            status=self._status(self._error, error) if error else self._unset,
            start_time=start_ns, end_time=end_ns, instrumentation_scope=self._scope)
        for processor in self._processors:
            processor.on_end(span)

    def _exception_event(self, exception: BaseException, at_ns: int) -> Any:
        """The event the SDK's `record_exception` adds, with the same attribute names."""
        kind = type(exception)
        module = kind.__module__
        return self._event("exception", {
            "exception.type": f"{module}.{kind.__qualname__}" if module and module != "builtins" else kind.__qualname__,
            "exception.message": str(exception),
            "exception.stacktrace": "".join(traceback.format_exception(exception)),
            "exception.escaped": "False"}, at_ns)


def _resource_hashed_once(resource: Any) -> Any:
    """The same resource, with its hash computed once: the OTLP encoder groups spans by resource and so
    hashes it for every span it encodes, which the SDK's Resource does by dumping its attributes as JSON."""
    from opentelemetry.sdk.resources import Resource

    class HashedOnceResource(Resource):
        def __init__(self, attributes: Any, schema_url: str | None = None) -> None:
            super().__init__(attributes, schema_url)
            self._hash = super().__hash__()

        def __hash__(self) -> int:
            return self._hash

    return HashedOnceResource(resource.attributes, resource.schema_url)


def _id_generator() -> Any:
    from opentelemetry.sdk.trace.id_generator import RandomIdGenerator

    class MeshIdGenerator(RandomIdGenerator):
        """A root span takes the trace id derived from its request's trace id (`tracing._start`)."""

        def generate_trace_id(self) -> int:
            return tracing.root_trace_id.get() or super().generate_trace_id()

        def is_trace_id_random(self) -> bool:
            return False  # a caller's X-Trace-Id need not be: no W3C `random-trace-id` flag is claimed

    return MeshIdGenerator()


def shutdown() -> None:
    """Export what is still batched and switch the hooks off (safe to call when tracing never started)."""
    global _provider
    tracing.activate(None)
    if _provider is not None:
        _provider.shutdown()
        _provider = None
