"""Request middlewares (outermost first): trace id + access log + metrics, error translation, header
hygiene, bearer auth."""

from __future__ import annotations

import logging
import time

import redis.asyncio as redis
from aiohttp import web
from aiohttp.typedefs import Handler

from gateway.errors import BearerRejected, error_response, http_error_response, upstream_refusal
from gateway.intake import AUTHORIZATION_HEADER, check_headers, trace_id
from gateway.metrics import GatewayMetrics
from gateway.settings import GatewaySettings
from vnclient import ValuationClient
from vncommon.auth import TokenSet, bearer_token
from vncommon.errors import VnError
from vncommon.logs import log_context
from vncommon.trace import TRACE_HEADER

log = logging.getLogger(__name__)
access_log = logging.getLogger("gateway.requests")

SETTINGS = web.AppKey("settings", GatewaySettings)
CLIENT = web.AppKey("client", ValuationClient)
HEALTH_REDIS = web.AppKey("health_redis", redis.Redis)
METRICS = web.AppKey("metrics", GatewayMetrics)
TOKENS = web.AppKey("tokens", TokenSet)
TRACE_ID = web.RequestKey("trace_id", str)
REQUEST_ID = web.RequestKey("request_id", str)

PUBLIC_PATHS = frozenset({"/healthz", "/openapi.json"})
CONSOLE_PAGE = "/console"
CONSOLE_ASSETS = "/console/static/"  # the console's page and scripts carry no data (see gateway/console.py)
CLIENT_CLOSED_REQUEST = 499  # logged when the caller went away before the answer


def _route_name(request: web.Request) -> str:
    """The route template (`/valuation/{requestId}/status`), so metrics do not grow per request id."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


def _request_id(request: web.Request) -> str | None:
    return request.get(REQUEST_ID) or request.match_info.get("requestId")


@web.middleware
async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Attach the trace id, echo it back, and write one log line and one metric sample per request."""
    started = time.perf_counter()
    request[TRACE_ID] = trace_id(request.headers)
    status = CLIENT_CLOSED_REQUEST
    try:
        with log_context(traceId=request[TRACE_ID]):
            response = await handler(request)
        status = response.status
        response.headers[TRACE_HEADER] = request[TRACE_ID]
        return response
    except web.HTTPException as exc:  # redirects and the like pass through untouched
        status = exc.status
        raise
    finally:  # a cancelled request (caller went away) is logged as 499
        elapsed = time.perf_counter() - started
        request.app[METRICS].observe_request(request.method, _route_name(request), status, elapsed)
        fields = {"method": request.method, "path": request.path, "status": status,
                  "ms": round(elapsed * 1000, 1), "requestId": _request_id(request), "traceId": request[TRACE_ID]}
        access_log.info("request", extra={"fields": fields})


@web.middleware
async def translate_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """VnError and aiohttp's HTTP errors become JSON answers; anything else is a logged 500."""
    try:
        return await handler(request)
    except VnError as exc:
        if upstream_refusal(exc):
            log.error("vnapi refused the gateway's credentials: set the gateway's VN_API_TOKEN (or "
                      "GRPC_API_TOKENS) to one of vnapi's GRPC_API_TOKENS", extra={"fields": {"error": exc.message}})
            exc = VnError("the gateway's credentials for vnapi are not accepted")
        return error_response(exc, _request_id(request))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return http_error_response(exc)
    except Exception:
        log.exception("unhandled error", extra={"fields": {"path": request.path}})
        return error_response(VnError("internal error"), _request_id(request))


@web.middleware
async def require_clean_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Headers that are not UTF-8, and an invalid X-Trace-Id, are refused before anything reads them."""
    check_headers(request.headers)
    return await handler(request)


def _is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path == CONSOLE_PAGE or path.startswith(CONSOLE_ASSETS)


@web.middleware
async def require_token(request: web.Request, handler: Handler) -> web.StreamResponse:
    """With GATEWAY_API_TOKENS set, every route but the public ones needs one of the tokens."""
    tokens = request.app[TOKENS]
    sent = bearer_token(request.headers.get(AUTHORIZATION_HEADER, "")) or ""
    if tokens and not _is_public(request.path) and not tokens.accepts(sent):
        raise BearerRejected("Missing or invalid bearer token")
    return await handler(request)
