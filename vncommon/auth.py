"""Bearer tokens on gRPC: the server interceptor that demands one, the client interceptor that sends one.

A server built with GRPC_API_TOKENS accepts a call outside health and reflection only when its metadata
carries `authorization: Bearer <token>` with one of them, or when the peer presented a client
certificate that mutual TLS verified. Everything else is answered UNAUTHENTICATED before the servicer
runs. `vncommon.grpcutil` installs both interceptors, so no service or client wires this up itself.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from typing import Any

import grpc

from vncommon.errors import Unauthenticated, VnError

log = logging.getLogger(__name__)

AUTHORIZATION_KEY = "authorization"
MISSING_TOKEN = (
    "this call needs gRPC metadata 'authorization: Bearer <token>' with one of the server's GRPC_API_TOKENS "
    "(vn, the SDK and the services send VN_API_TOKEN, else the first of GRPC_API_TOKENS), or a client "
    "certificate under mutual TLS"
)
REJECTED_TOKEN = (
    "the bearer token is not one of the server's GRPC_API_TOKENS; set VN_API_TOKEN (or GRPC_API_TOKENS) "
    "of the caller to a token the server accepts"
)

Continuation = Callable[[grpc.HandlerCallDetails], Awaitable[Any]]
ToStatus = Callable[[VnError], grpc.Status]


def bearer_token(authorization: str) -> str | None:
    """The token of an `Authorization` value; "" for another scheme or no token, None for no value."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


class TokenSet:
    """The accepted tokens, compared in constant time."""

    def __init__(self, tokens: Sequence[str]) -> None:
        self._tokens = tuple(token.encode() for token in tokens)

    def __bool__(self) -> bool:
        return bool(self._tokens)

    def accepts(self, sent: str) -> bool:
        candidate = sent.encode("utf-8", "replace")
        # A list, not a generator: every token is compared, so timing shows neither a near match nor which
        # of the tokens it was.
        return bool(candidate) and any([hmac.compare_digest(candidate, token) for token in self._tokens])


def _metadata_token(metadata: Iterable[tuple[str, Any]]) -> str | None:
    for key, value in metadata:
        if key == AUTHORIZATION_KEY:
            return bearer_token(value) if isinstance(value, str) else ""
    return None


class TokenAuthInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Admits a call with an accepted token or a verified client certificate; UNAUTHENTICATED otherwise."""

    def __init__(self, tokens: Sequence[str], open_services: Iterable[str], to_status: ToStatus) -> None:
        self._tokens = TokenSet(tokens)
        self._open = tuple(f"/{name}/" for name in open_services)
        self._missing = to_status(Unauthenticated(MISSING_TOKEN))
        self._rejected = to_status(Unauthenticated(REJECTED_TOKEN))

    async def intercept_service(self, continuation: Continuation, details: grpc.HandlerCallDetails) -> Any:
        handler = await continuation(details)
        if handler is None or details.method.startswith(self._open):
            return handler
        sent = _metadata_token(details.invocation_metadata or ())
        if sent and self._tokens.accepts(sent):
            return handler
        # Only the call's context knows the peer's certificate, so the last word is said inside the call.
        return _guarded(handler, details.method, self._missing if sent is None else self._rejected)


def _has_verified_certificate(context: grpc.aio.ServicerContext) -> bool:
    # gRPC reports peer identities only for a client certificate that the server's CA verified.
    return bool(context.peer_identities())


def _guarded(handler: Any, method: str, refusal: grpc.Status) -> Any:
    """`handler` behind a check that lets a verified client certificate through and refuses the rest."""

    async def admit(context: grpc.aio.ServicerContext) -> None:
        if not _has_verified_certificate(context):
            log.info("call refused: no accepted credential", extra={"fields": {"method": method,
                                                                                "peer": context.peer()}})
            await context.abort(refusal.code, refusal.details, refusal.trailing_metadata)

    def unary(behaviour: Callable[[Any, Any], Awaitable[Any]]) -> Callable[[Any, Any], Awaitable[Any]]:
        async def call(request: Any, context: grpc.aio.ServicerContext) -> Any:
            await admit(context)
            return await behaviour(request, context)
        return call

    def streaming(behaviour: Callable[[Any, Any], AsyncIterator[Any]]) -> Callable[[Any, Any], AsyncIterator[Any]]:
        # The mesh's streaming servicers are async generators; so is this wrapper.
        async def call(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            await admit(context)
            async for item in behaviour(request, context):
                yield item
        return call

    if handler.unary_unary is not None:
        return handler._replace(unary_unary=unary(handler.unary_unary))
    if handler.stream_unary is not None:
        return handler._replace(stream_unary=unary(handler.stream_unary))
    if handler.unary_stream is not None:
        return handler._replace(unary_stream=streaming(handler.unary_stream))
    return handler._replace(stream_stream=streaming(handler.stream_stream))


class _TokenMetadata:
    def __init__(self, token: str) -> None:
        self._entry = (AUTHORIZATION_KEY, f"Bearer {token}")

    def _with_token(self, details: Any) -> Any:
        metadata = list(details.metadata or ())
        if any(key == AUTHORIZATION_KEY for key, _ in metadata):
            return details
        return details._replace(metadata=grpc.aio.Metadata(*metadata, self._entry))


class _UnaryToken(_TokenMetadata, grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(self._with_token(details), request)


class _StreamToken(_TokenMetadata, grpc.aio.UnaryStreamClientInterceptor):  # type: ignore[misc]
    async def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(self._with_token(details), request)


def token_senders(token: str) -> list[Any]:
    """Client interceptors adding `authorization: Bearer <token>` to every call of a channel (unless the
    caller set one). One per kind of call: a grpc.aio channel files each interceptor under one kind only."""
    return [_UnaryToken(token), _StreamToken(token)]
