"""The REST API of SPEC section 4 on aiohttp: routes, handlers, and the process-wide vnapi client."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from gateway import console, intake
from gateway.errors import error_response, processing_failed
from gateway.events import events
from gateway.health import create_health_redis, down_dependencies
from gateway.metrics import GatewayMetrics
from gateway.middleware import (
    CLIENT,
    HEALTH_REDIS,
    METRICS,
    REQUEST_ID,
    SETTINGS,
    TOKENS,
    TRACE_ID,
    observe,
    require_clean_headers,
    require_token,
    translate_errors,
)
from gateway.openapi import build_document
from gateway.settings import GatewaySettings
from vn.v1 import valuation_pb2
from vnclient import ValuationClient, status_to_dict
from vncommon import tracing
from vncommon.auth import TokenSet
from vncommon.errors import RequestCancelled
from vncommon.state import Status, SubmitAnswer, status_to_json

log = logging.getLogger(__name__)

XML_CONTENT_TYPE = "application/xml"
REQUEST_ID_HEADER = "X-Request-Id"
OPENAPI = web.AppKey("openapi", dict)


def _accepted(request_id: str, status: str) -> web.Response:
    headers = {REQUEST_ID_HEADER: request_id, "Location": f"/valuation/{request_id}/status"}
    return web.json_response({"requestId": request_id, "status": status}, status=202, headers=headers)


def _sync_answer(response: valuation_pb2.SubmitResponse) -> tuple[str, web.Response]:
    """(outcome, answer) of a sync submission: the XML, the failure, or a pending answer when the wait ran out."""
    request_id = response.request_id
    if response.status == valuation_pb2.REQUEST_STATUS_FAILED and not response.timed_out:
        return Status.FAILED, processing_failed(request_id, response.failure_detail)
    if response.status == valuation_pb2.REQUEST_STATUS_CANCELLED and not response.timed_out:
        cancelled = RequestCancelled(f"request {request_id} was cancelled", {"detail": response.failure_detail})
        return Status.CANCELLED, error_response(cancelled, request_id)
    if response.status == valuation_pb2.REQUEST_STATUS_SUCCEEDED and not response.timed_out:
        answer = web.Response(body=response.response_xml, content_type=XML_CONTENT_TYPE,
                              headers={REQUEST_ID_HEADER: request_id})
        return Status.SUCCEEDED, answer
    return SubmitAnswer.PENDING, _accepted(request_id, SubmitAnswer.PENDING)


async def submit(request: web.Request) -> web.Response:
    """POST /valuation?sync=Y|N with a VNML body."""
    sync = intake.parse_sync(request.query)
    with tracing.gateway_span(request[TRACE_ID], sync, request.headers.get(tracing.TRACEPARENT, "")):
        return await _submit(request, sync)


async def _submit(request: web.Request, sync: bool) -> web.Response:
    settings = request.app[SETTINGS]
    content_type = intake.xml_content_type(request)
    key = intake.idempotency_key(request.headers)
    metadata = intake.forwarded_metadata(request.headers)
    priority = intake.priority(request.headers)
    deadline_ms = intake.deadline_ms(request.headers)
    xml = await intake.read_body(request, settings.payload_max_bytes)
    response = await request.app[CLIENT].submit(
        xml,
        sync=sync,
        idempotency_key=key,
        metadata=metadata,
        content_type=content_type,
        trace_id=request[TRACE_ID],
        priority=priority,
        deadline_ms=deadline_ms,
        timeout=settings.sync_deadline_s if sync else settings.call_timeout_s,
    )
    request[REQUEST_ID] = response.request_id
    if not sync:
        request.app[METRICS].observe_submission(False, SubmitAnswer.ACCEPTED)
        return _accepted(response.request_id, SubmitAnswer.ACCEPTED)
    outcome, answer = _sync_answer(response)
    request.app[METRICS].observe_submission(True, outcome)
    return answer


async def status(request: web.Request) -> web.Response:
    """GET /valuation/{requestId}/status."""
    request_id = request.match_info["requestId"]
    response = await request.app[CLIENT].status(request_id, timeout=request.app[SETTINGS].call_timeout_s)
    return web.json_response(status_to_dict(response))


async def results(request: web.Request) -> web.Response:
    """GET /valuation/{requestId}/results: the response XML of a succeeded request."""
    request_id = request.match_info["requestId"]
    xml = await request.app[CLIENT].results(request_id, timeout=request.app[SETTINGS].call_timeout_s)
    return web.Response(body=xml, content_type=XML_CONTENT_TYPE)


async def cancel(request: web.Request) -> web.Response:
    """POST /valuation/{requestId}/cancel: 202 with the status the request had."""
    request_id = request.match_info["requestId"]
    request[REQUEST_ID] = request_id
    response = await request.app[CLIENT].cancel(request_id, timeout=request.app[SETTINGS].call_timeout_s)
    return web.json_response({"requestId": response.request_id, "status": status_to_json(response.previous_status)},
                             status=202, headers={REQUEST_ID_HEADER: request_id})


async def healthz(request: web.Request) -> web.Response:
    """GET /healthz: 200 when Redis and vnapi answer, else 503 naming what is down."""
    timeout_s = request.app[SETTINGS].health_timeout_ms / 1000
    down = await down_dependencies(request.app[CLIENT], request.app[HEALTH_REDIS], timeout_s)
    if not down:
        return web.json_response({"status": "ok"})
    body = {"status": "unavailable", "message": f"not answering: {', '.join(down)}", "down": down}
    return web.json_response(body, status=503)


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(request.app[OPENAPI])


async def metrics(request: web.Request) -> web.Response:
    registry = request.app[METRICS]
    return web.Response(body=registry.render(), headers={"Content-Type": registry.content_type})


def _dependencies(
    client: ValuationClient | None,
) -> Callable[[web.Application], AsyncIterator[None]]:
    """Cleanup context: one long-lived vnapi channel and one health Redis client per process."""

    async def context(app: web.Application) -> AsyncIterator[None]:
        settings = app[SETTINGS]
        owned = client is None
        app[CLIENT] = client if client is not None else ValuationClient(settings.client_settings())
        app[HEALTH_REDIS] = create_health_redis(settings.redis_url, settings.health_timeout_ms / 1000)
        try:
            yield
        finally:
            await app[HEALTH_REDIS].aclose()
            if owned:
                await app[CLIENT].close()

    return context


def create_app(settings: GatewaySettings, client: ValuationClient | None = None) -> web.Application:
    """The gateway application; it opens its vnapi client on startup unless one is given."""
    app = web.Application(
        client_max_size=settings.client_max_size,
        middlewares=[observe, translate_errors, require_clean_headers, require_token],
    )
    app[SETTINGS] = settings
    app[TOKENS] = TokenSet(settings.api_tokens)
    app[METRICS] = GatewayMetrics()
    app[OPENAPI] = build_document(settings)
    app.cleanup_ctx.append(_dependencies(client))
    app.router.add_post("/valuation", submit)
    app.router.add_get("/valuation/{requestId}/status", status, allow_head=False)
    app.router.add_get("/valuation/{requestId}/results", results, allow_head=False)
    app.router.add_post("/valuation/{requestId}/cancel", cancel)
    app.router.add_get("/valuation/{requestId}/events", events, allow_head=False)
    app.router.add_get("/healthz", healthz, allow_head=False)
    app.router.add_get("/openapi.json", openapi, allow_head=False)
    app.router.add_get("/metrics", metrics, allow_head=False)
    console.add_routes(app)
    return app
