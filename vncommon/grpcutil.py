"""gRPC bootstrap shared by every service and client: options, health, reflection, error translation."""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, TypeVar

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from grpc_status import rpc_status

from vncommon import tracing
from vncommon.auth import TokenAuthInterceptor, token_senders
from vncommon.balancing import balancing_options
from vncommon.config import TlsSettings, is_loopback
from vncommon.errors import BindError, Unavailable, VnError, rebuild
from vncommon.metrics import SERVING

log = logging.getLogger(__name__)

ERROR_DOMAIN = "vnml.dev"
Req = TypeVar("Req")
Resp = TypeVar("Resp")


def channel_options(max_send_bytes: int, max_receive_bytes: int) -> list[tuple[str, Any]]:
    """Options every channel and server uses: message limits sized for the payload, keepalive on."""
    return [
        ("grpc.max_send_message_length", max_send_bytes),
        ("grpc.max_receive_message_length", max_receive_bytes),
        ("grpc.keepalive_time_ms", 30_000),
        ("grpc.keepalive_timeout_ms", 10_000),
        ("grpc.http2.max_pings_without_data", 0),
        ("grpc.keepalive_permit_without_calls", 1),
    ]


def create_channel(
    address: str, max_message_bytes: int, tls: TlsSettings | None = None, token: str = "",
    max_receive_bytes: int | None = None,
) -> grpc.aio.Channel:
    """A channel with the mesh's options; over TLS (presenting our certificate) when configured, and
    sending `token` as `authorization: Bearer <token>` on every call when one is given. Answers may be
    up to `max_receive_bytes` (default: as large as what it sends), e.g. a response larger than its request."""
    options = channel_options(max_message_bytes, max_receive_bytes or max_message_bytes) + balancing_options(address)
    interceptors = [*(token_senders(token) if token else ()), *tracing.client_interceptors()] or None
    if tls is None or not tls.enabled:
        return grpc.aio.insecure_channel(address, options=options, interceptors=interceptors)
    cert, key, ca = tls.read()
    credentials = grpc.ssl_channel_credentials(root_certificates=ca, private_key=key, certificate_chain=cert)
    return grpc.aio.secure_channel(address, credentials, options=options, interceptors=interceptors)


HEALTH_SERVICE = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name
# Load balancers and tools reach these without credentials; they reveal nothing a request could use.
OPEN_SERVICES = (HEALTH_SERVICE, reflection.SERVICE_NAME)


class ServiceServer:
    """A grpc.aio server with health checking and reflection for the given service descriptors.

    With `tokens` (GRPC_API_TOKENS), every call but health and reflection needs one of them, or a client
    certificate verified under mutual TLS.
    """

    def __init__(self, max_message_bytes: int, service_names: Sequence[str], tokens: Sequence[str] = (),
                 max_send_bytes: int | None = None) -> None:
        interceptors = [TokenAuthInterceptor(tokens, OPEN_SERVICES, to_status)] if tokens else None
        # Receives up to a payload; may send more (vnapi's GetResults answers carry a whole response).
        # gRPC sets SO_REUSEPORT by default, so a second server on a taken port would bind and share it
        # silently; without it, the bind fails and the runner says the port is taken (EXIT_BIND).
        options = [*channel_options(max_send_bytes or max_message_bytes, max_message_bytes), ("grpc.so_reuseport", 0)]
        self.server = grpc.aio.server(options=options, interceptors=interceptors)
        self.health = health.aio.HealthServicer()
        self._service_names = list(service_names)
        self._authenticated = bool(tokens)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection([*self._service_names, *OPEN_SERVICES], self.server)
        self.port = 0

    def bind(self, address: str, tls: TlsSettings | None = None) -> int:
        """Listen on `address`; with TLS configured, only over TLS (mutual when a CA is set)."""
        self._warn_if_open(address, tls)
        try:
            if tls is not None and tls.cert_file:
                cert, key, ca = tls.read()
                assert cert is not None and key is not None
                credentials = grpc.ssl_server_credentials([(key, cert)], root_certificates=ca,
                                                          require_client_auth=ca is not None)
                self.port = self.server.add_secure_port(address, credentials)
            else:
                self.port = self.server.add_insecure_port(address)
        except RuntimeError as exc:  # grpcio raises RuntimeError("Failed to bind ...") for a taken port
            raise BindError(f"cannot listen on {address}: the address is in use or not available") from exc
        if self.port == 0:
            raise BindError(f"cannot listen on {address}: the address is in use or not available")
        return self.port

    def _warn_if_open(self, address: str, tls: TlsSettings | None) -> None:
        mutual = tls is not None and bool(tls.cert_file and tls.ca_file)
        if self._authenticated or mutual or is_loopback(address.rpartition(":")[0]):
            return
        log.warning(
            "gRPC listens beyond this machine without authentication: anyone who reaches the port may call "
            "every method; set GRPC_API_TOKENS or mutual TLS (GRPC_TLS_CERT_FILE, GRPC_TLS_KEY_FILE, "
            "GRPC_TLS_CA_FILE)", extra={"fields": {"address": address}})

    async def start(self) -> None:
        await self.server.start()
        await self.set_serving(True)

    async def set_serving(self, serving: bool) -> None:
        status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        for name in ["", *self._service_names]:
            await self.health.set(name, status)
        SERVING.set(1 if serving else 0)

    async def stop(self, grace_seconds: float) -> None:
        await self.set_serving(False)
        await self.server.stop(grace_seconds)


def to_status(error: VnError) -> grpc.Status:
    info = error_details_pb2.ErrorInfo(reason=error.reason, domain=ERROR_DOMAIN, metadata=error.metadata)
    detail = any_pb2.Any()
    detail.Pack(info)
    status = status_pb2.Status(code=error.code.value[0], message=error.message, details=[detail])
    return rpc_status.to_status(status)


def _redis_unavailable(exc: Exception) -> bool:
    """Redis away or failing over (a lost connection, a cluster re-mapping): the caller should retry.
    Looked up lazily: clients of this module (the SDK) never load redis."""
    redisconn = sys.modules.get("vncommon.redisconn")
    return redisconn is not None and isinstance(exc, redisconn.REDIS_ERRORS)


async def _abort(context: grpc.aio.ServicerContext, exc: Exception) -> None:
    if isinstance(exc, VnError):
        status = to_status(exc)
    elif _redis_unavailable(exc):
        log.warning("redis unavailable during an RPC", extra={"fields": {"error": str(exc)}})
        status = to_status(Unavailable("redis is unavailable right now; retry"))
    else:
        log.exception("unexpected error in RPC")
        status = to_status(VnError("internal error; the server log has the details"))
    await context.abort(status.code, status.details, status.trailing_metadata)


def unary_errors(
    method: Callable[[Any, Req, grpc.aio.ServicerContext], Awaitable[Resp]],
) -> Callable[[Any, Req, grpc.aio.ServicerContext], Awaitable[Resp]]:
    """Turn VnError into a rich status; anything else into INTERNAL with the traceback logged."""

    @functools.wraps(method)
    async def wrapper(self: Any, request: Req, context: grpc.aio.ServicerContext) -> Resp:
        try:
            return await method(self, request, context)
        except (VnError, Exception) as exc:
            if isinstance(exc, grpc.aio.AbortError):
                raise
            await _abort(context, exc)
            raise AssertionError("unreachable: abort raises") from exc

    return wrapper


def stream_errors(
    method: Callable[[Any, Req, grpc.aio.ServicerContext], AsyncIterator[Resp]],
) -> Callable[[Any, Req, grpc.aio.ServicerContext], AsyncIterator[Resp]]:
    """The server-streaming twin of `unary_errors`."""

    @functools.wraps(method)
    async def wrapper(self: Any, request: Req, context: grpc.aio.ServicerContext) -> AsyncIterator[Resp]:
        try:
            async for item in method(self, request, context):
                yield item
        except (VnError, Exception) as exc:
            if isinstance(exc, grpc.aio.AbortError):
                raise
            await _abort(context, exc)

    return wrapper


def decode_error(exc: grpc.aio.AioRpcError) -> VnError:
    """Turn a failed call back into the VnError subclass named by its ErrorInfo reason (or its code)."""
    status = rpc_status.from_call(exc)
    if status is not None:
        for detail in status.details:
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                return rebuild(info.reason, exc.code(), status.message, dict(info.metadata))
    return rebuild(exc.code().name, exc.code(), exc.details() or exc.code().name, {})
