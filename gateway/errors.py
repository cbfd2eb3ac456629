"""The one table from VnError (reason, else gRPC code) to HTTP status and JSON body.

Every JSON error carries `message` and `reason`; some reasons add fields the SPEC asks for (the parser
position of malformed XML, the status of a request whose results are not ready, a failure's detail).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import grpc
from aiohttp import web

from vnclient import parse_detail
from vncommon.errors import Unauthenticated, VnError
from vncommon.state import UNFINISHED, Status

JsonBody = dict[str, Any]
Extra = Callable[[VnError, str | None], JsonBody]


class BearerRejected(Unauthenticated):
    """The route needs `Authorization: Bearer <token>` with one of GATEWAY_API_TOKENS (the caller's 401).

    An UNAUTHENTICATED from vnapi is another matter: the gateway's own token was refused (`upstream_refusal`).
    """


def upstream_refusal(error: VnError) -> bool:
    """True when vnapi refused the gateway's credentials: a fault of the gateway's set-up, not the caller's."""
    return isinstance(error, Unauthenticated) and not isinstance(error, BearerRejected)


def _position(error: VnError, request_id: str | None) -> JsonBody:
    return {"line": _int(error.metadata.get("line")), "column": _int(error.metadata.get("column"))}


def _not_ready(error: VnError, request_id: str | None) -> JsonBody:
    return {"requestId": request_id, "status": error.metadata.get("status", UNFINISHED)}


def _failed(error: VnError, request_id: str | None) -> JsonBody:
    return {"requestId": request_id, "status": Status.FAILED, "detail": parse_detail(error.metadata.get("detail", ""))}


def _cancelled(error: VnError, request_id: str | None) -> JsonBody:
    return {"requestId": request_id, "status": Status.CANCELLED,
            "detail": parse_detail(error.metadata.get("detail", ""))}


def _finished(error: VnError, request_id: str | None) -> JsonBody:
    return {"requestId": request_id, "status": error.metadata.get("status", "")}


def _int(raw: str | None) -> int | None:
    try:
        return int(raw) if raw else None
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class Rule:
    """How one reason is answered: status, optionally a fixed public message, extra fields, headers."""

    status: int
    message: str | None = None
    extra: Extra | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


RULES: dict[str, Rule] = {
    "INVALID_ARGUMENT": Rule(400),
    "EMPTY_BODY": Rule(400),
    "INVALID_VNML": Rule(400),
    "MALFORMED_XML": Rule(400, extra=_position),
    "UNAUTHENTICATED": Rule(401, headers={"WWW-Authenticate": 'Bearer realm="vnml"'}),
    "REQUEST_NOT_FOUND": Rule(404, "Request not found"),
    "RESULT_NOT_READY": Rule(404, "Result not yet available", _not_ready),
    "IDEMPOTENCY_KEY_REUSED": Rule(409),
    "REQUEST_EXPIRED": Rule(410, "Request expired; its data was purged"),
    "PAYLOAD_TOO_LARGE": Rule(413),
    "UNSUPPORTED_MEDIA_TYPE": Rule(415),
    "REQUEST_FAILED": Rule(422, "Request failed", _failed),
    "REQUEST_CANCELLED": Rule(409, "Request cancelled", _cancelled),
    "REQUEST_FINISHED": Rule(409, "Request already finished", _finished),
    "INTERNAL": Rule(500, "Internal error"),
    "UNAVAILABLE": Rule(503, "Valuation service unavailable"),
    "DEADLINE_EXCEEDED": Rule(504, "Valuation service did not answer in time"),
}

# For reasons the table does not name (a newer vnapi, or a bare status): the usual gRPC-to-HTTP mapping.
STATUS_BY_CODE: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.CANCELLED: 503,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
}


def rule_for(error: VnError) -> Rule:
    rule = RULES.get(error.reason)
    if rule is not None:
        return rule
    return Rule(STATUS_BY_CODE.get(error.code, 500))


def error_response(error: VnError, request_id: str | None = None) -> web.Response:
    """The HTTP answer for a VnError raised by vnapi or by the gateway's own checks."""
    rule = rule_for(error)
    body: JsonBody = {"message": rule.message or error.message, "reason": error.reason}
    if rule.extra is not None:
        body.update(rule.extra(error, request_id))
    response = web.json_response(body, status=rule.status, headers=dict(rule.headers))
    if rule.status == 413:
        # The unread rest of an oversized body must not be taken for the next request on this connection.
        response.force_close()
    return response


def http_error_response(exc: web.HTTPException) -> web.Response:
    """aiohttp's own errors (unknown route, wrong method) as JSON with a message."""
    reason = exc.reason.upper().replace(" ", "_")
    headers = {name: value for name, value in exc.headers.items() if name.lower() in ("allow",)}
    return web.json_response({"message": exc.reason, "reason": reason}, status=exc.status, headers=headers)


def processing_failed(request_id: str, detail: str) -> web.Response:
    """A sync submission whose request failed (SPEC section 4: 500 with the failure detail)."""
    body = {"message": "Processing failed", "requestId": request_id, "detail": parse_detail(detail)}
    return web.json_response(body, status=500, headers={"X-Request-Id": request_id})
