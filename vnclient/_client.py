"""The async SDK for vnapi's ValuationService: one channel, a deadline on every call, typed errors.

Each method's `timeout` is the gRPC deadline sent with the call (the server stops work when it passes),
which is why these are parameters rather than an `asyncio.timeout` around the call.

Failed calls are translated exactly once, in `translate_error`, into the `vncommon.errors` classes, so
callers match on exception types (or `reason`) and never on gRPC status codes or message strings.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from vn.v1 import console_pb2, console_pb2_grpc, streams_pb2, valuation_pb2, valuation_pb2_grpc
from vncommon.config import (
    MESSAGE_HEADROOM_BYTES,
    TlsSettings,
    env_address,
    env_client_token,
    env_int,
    response_max_bytes,
)
from vncommon.errors import VnError
from vncommon.grpcutil import create_channel, decode_error

DEFAULT_ADDRESS = "127.0.0.1:50051"
DEFAULT_PAYLOAD_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_CALL_TIMEOUT_S = 10.0
DEFAULT_SYNC_WAIT_S = 120.0
# A sync Submit's deadline must outlive the server's own wait, or the caller would never see a pending answer.
SYNC_DEADLINE_MARGIN_S = 10.0
DEFAULT_WATCH_TIMEOUT_S = 24 * 3600.0
VALUATION_SERVICE = valuation_pb2.DESCRIPTOR.services_by_name["ValuationService"].full_name


@dataclass(frozen=True, slots=True)
class ClientSettings:
    """Where vnapi is, how long calls may take, and the bearer token sent on every call (when vnapi has
    GRPC_API_TOKENS)."""

    address: str = DEFAULT_ADDRESS
    payload_max_bytes: int = DEFAULT_PAYLOAD_MAX_BYTES
    call_timeout_s: float = DEFAULT_CALL_TIMEOUT_S
    sync_timeout_s: float = DEFAULT_SYNC_WAIT_S + SYNC_DEADLINE_MARGIN_S
    watch_timeout_s: float = DEFAULT_WATCH_TIMEOUT_S
    tls: TlsSettings = field(default_factory=TlsSettings)
    token: str = field(default="", repr=False)

    @property
    def grpc_max_message_bytes(self) -> int:
        """The largest Submit this client sends."""
        return self.payload_max_bytes + MESSAGE_HEADROOM_BYTES

    @property
    def grpc_max_response_message_bytes(self) -> int:
        """The largest answer it receives: a whole response (vncommon.config.response_max_bytes)."""
        return response_max_bytes(self.payload_max_bytes) + MESSAGE_HEADROOM_BYTES

    @classmethod
    def from_env(cls, env: Mapping[str, str], address: str | None = None) -> ClientSettings:
        """Read VNAPI_ADDRESS, PAYLOAD_MAX_BYTES, SYNC_WAIT_TIMEOUT_MS, GRPC_TLS_* and VN_API_TOKEN (else the
        first of GRPC_API_TOKENS); `address` overrides the first."""
        sync_wait_ms = env_int(env, "SYNC_WAIT_TIMEOUT_MS", int(DEFAULT_SYNC_WAIT_S * 1000), minimum=1)
        return cls(
            address=address or env_address(env, "VNAPI_ADDRESS", DEFAULT_ADDRESS),
            payload_max_bytes=env_int(env, "PAYLOAD_MAX_BYTES", DEFAULT_PAYLOAD_MAX_BYTES, minimum=1024),
            sync_timeout_s=sync_wait_ms / 1000 + SYNC_DEADLINE_MARGIN_S,
            tls=TlsSettings.from_env(env),
            token=env_client_token(env),
        )


def translate_error(exc: grpc.aio.AioRpcError) -> VnError:
    """Turn a failed call into its VnError subclass (the one place the SDK reads gRPC statuses)."""
    return decode_error(exc)


class ValuationClient:
    """Async client of vnapi. Create once, share, and `close()` (or use `async with`)."""

    def __init__(self, settings: ClientSettings | None = None) -> None:
        self.settings = settings or ClientSettings()
        self._channel = create_channel(self.settings.address, self.settings.grpc_max_message_bytes,
                                       self.settings.tls, self.settings.token,
                                       max_receive_bytes=self.settings.grpc_max_response_message_bytes)
        self._stub: Any = valuation_pb2_grpc.ValuationServiceStub(self._channel)  # type: ignore[no-untyped-call]
        self._health: Any = health_pb2_grpc.HealthStub(self._channel)
        self._console: Any = console_pb2_grpc.ConsoleServiceStub(self._channel)  # type: ignore[no-untyped-call]

    async def __aenter__(self) -> ValuationClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self, grace_s: float | None = None) -> None:
        await self._channel.close(grace_s)

    async def submit(
        self,
        xml: bytes,
        *,
        sync: bool = False,
        idempotency_key: str | None = None,
        metadata: Mapping[str, str] | None = None,
        content_type: str = "application/xml",
        trace_id: str | None = None,
        priority: valuation_pb2.Priority = valuation_pb2.PRIORITY_UNSPECIFIED,
        deadline_ms: int = 0,
        timeout: float | None = None,  # noqa: ASYNC109 - sent to the server as the gRPC deadline
    ) -> valuation_pb2.SubmitResponse:
        """Submit a VNML request; with `sync`, wait (server side) for its outcome. `deadline_ms` (0: none)
        cancels the request if it has not ended that long after it was received."""
        request = valuation_pb2.SubmitRequest(
            xml=xml,
            sync=sync,
            idempotency_key=idempotency_key or "",
            metadata=dict(metadata or {}),
            content_type=content_type,
            trace_id=trace_id or "",
            priority=priority,
            deadline_ms=deadline_ms,
        )
        if timeout is None:
            timeout = self.settings.sync_timeout_s if sync else self.settings.call_timeout_s
        response: valuation_pb2.SubmitResponse = await self._unary(self._stub.Submit, request, timeout)
        return response

    async def status(
        self, request_id: str, *, timeout: float | None = None  # noqa: ASYNC109 - the gRPC deadline
    ) -> valuation_pb2.GetStatusResponse:
        """Where the request is now."""
        request = valuation_pb2.GetStatusRequest(request_id=request_id)
        response: valuation_pb2.GetStatusResponse = await self._unary(self._stub.GetStatus, request, timeout)
        return response

    async def results(self, request_id: str, *, timeout: float | None = None) -> bytes:  # noqa: ASYNC109
        """The response XML of a succeeded request (ResultNotReady, RequestFailed, RequestExpired otherwise)."""
        request = valuation_pb2.GetResultsRequest(request_id=request_id)
        response: valuation_pb2.GetResultsResponse = await self._unary(self._stub.GetResults, request, timeout)
        return response.response_xml

    async def cancel(
        self, request_id: str, *, timeout: float | None = None  # noqa: ASYNC109 - the gRPC deadline
    ) -> valuation_pb2.CancelResponse:
        """Cancel a request that has not ended (RequestFinished if it has; cancelling twice is fine)."""
        request = valuation_pb2.CancelRequest(request_id=request_id)
        response: valuation_pb2.CancelResponse = await self._unary(self._stub.Cancel, request, timeout)
        return response

    async def watch(
        self, request_id: str, *, timeout: float | None = None  # noqa: ASYNC109 - the gRPC deadline
    ) -> AsyncIterator[streams_pb2.LifecycleEvent]:
        """The request's lifecycle events, from its first to its terminal one."""
        call = self._stub.Watch(
            valuation_pb2.WatchRequest(request_id=request_id),
            timeout=timeout if timeout is not None else self.settings.watch_timeout_s,
        )
        try:
            async for response in call:
                yield response.event
        except grpc.aio.AioRpcError as exc:
            raise translate_error(exc) from exc
        finally:
            # Stops the server stream when the caller leaves the loop early.
            call.cancel()

    async def list_requests(
        self, request: console_pb2.ListRequestsRequest, *, timeout: float | None = None  # noqa: ASYNC109
    ) -> console_pb2.ListRequestsResponse:
        """The most recent requests, newest first (ConsoleService)."""
        response: console_pb2.ListRequestsResponse = await self._unary(self._console.ListRequests, request, timeout)
        return response

    async def request_detail(
        self, request: console_pb2.GetRequestDetailRequest, *, timeout: float | None = None  # noqa: ASYNC109
    ) -> console_pb2.GetRequestDetailResponse:
        """One request's groups and notable tasks (ConsoleService)."""
        response: console_pb2.GetRequestDetailResponse = await self._unary(
            self._console.GetRequestDetail, request, timeout)
        return response

    async def workers(
        self, request: console_pb2.GetWorkersRequest, *, timeout: float | None = None  # noqa: ASYNC109
    ) -> console_pb2.GetWorkersResponse:
        """Task workers, in-flight tasks, stream backlogs and dead letters (ConsoleService)."""
        response: console_pb2.GetWorkersResponse = await self._unary(self._console.GetWorkers, request, timeout)
        return response

    async def check_health(
        self, service: str = VALUATION_SERVICE, *, timeout: float | None = None  # noqa: ASYNC109
    ) -> bool:
        """True when vnapi's health service reports `service` as SERVING."""
        request = health_pb2.HealthCheckRequest(service=service)
        response = await self._unary(self._health.Check, request, timeout)
        return bool(response.status == health_pb2.HealthCheckResponse.SERVING)

    async def _unary(
        self,
        method: Any,
        request: Any,
        deadline_s: float | None,
    ) -> Any:
        try:
            return await method(request, timeout=deadline_s if deadline_s is not None else self.settings.call_timeout_s)
        except grpc.aio.AioRpcError as exc:
            raise translate_error(exc) from exc
