"""The web console: its static page (no build step, shipped in the package) and the JSON it reads.

Auth: the page and its scripts hold no data and are public, so a browser can load them without a
header. Everything with data (/console/api/*, /valuation/*) needs the bearer token like the rest of
the API: the page asks for the token once, keeps it in sessionStorage (gone with the tab) and sends it
as an `Authorization` header with fetch. The event stream is read with fetch too (EventSource cannot
send headers), so the token never appears in a URL, a cookie or an access log.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp import web

from gateway.middleware import CLIENT, CONSOLE_ASSETS, CONSOLE_PAGE, SETTINGS
from vn.v1 import console_pb2
from vnclient import status_to_dict
from vnclient.convert import timestamp_iso
from vncommon.errors import InvalidArgument
from vncommon.state import REQUEST_STATES, status_to_json

STATIC_DIR = Path(__file__).with_name("console_static")
CONSOLE_PATH = CONSOLE_PAGE
STATIC_PREFIX = CONSOLE_ASSETS
# The page runs only its own scripts and talks only to this origin.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
                               "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
# Offered by the API now; the page shows a control only for what is here and true.
CAPABILITIES = {"cancel": True}


# The page's files, by name: nothing else under the directory is served.
ASSETS = {"app.js": "text/javascript", "api.js": "text/javascript", "dom.js": "text/javascript",
          "request.js": "text/javascript", "style.css": "text/css"}


async def page(request: web.Request) -> web.Response:
    return web.Response(body=(STATIC_DIR / "index.html").read_bytes(), content_type="text/html",
                        charset="utf-8", headers=PAGE_HEADERS)


async def asset(request: web.Request) -> web.Response:
    name = request.match_info["asset"]
    kind = ASSETS.get(name)
    if kind is None:
        raise web.HTTPNotFound(text="no such console file")
    return web.Response(body=(STATIC_DIR / name).read_bytes(), content_type=kind, charset="utf-8",
                        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"})


# Query numbers are bounds of a page (vnapi checks the real limits); longer ones cannot be meant.
MAX_QUERY_DIGITS = 9


def _query_int(request: web.Request, name: str) -> int:
    """A whole-number query parameter; 0 when absent. Empty, not digits, or absurdly long: a 400."""
    if name not in request.query:
        return 0
    raw = request.query[name]
    if not raw.isascii() or not raw.isdigit() or len(raw) > MAX_QUERY_DIGITS:
        raise InvalidArgument(f"{name} must be a whole number of at most {MAX_QUERY_DIGITS} digits",
                              {"field": name})
    return int(raw)


def summary_to_dict(summary: console_pb2.RequestSummary) -> dict[str, Any]:
    return {"requestId": summary.request_id, "status": status_to_json(summary.status), "priority": summary.priority,
            "groupCount": summary.group_count, "groupsCompleted": summary.groups_completed,
            "tasksTotal": summary.tasks_total, "tasksCompleted": summary.tasks_completed,
            "retryCount": summary.retry_count, "receivedAt": timestamp_iso(summary, "received_at"),
            "startedAt": timestamp_iso(summary, "started_at"), "completedAt": timestamp_iso(summary, "completed_at")}


def _attempt(task: console_pb2.TaskAttempt) -> dict[str, Any]:
    return {"taskId": task.task_id, "status": task.status, "attempt": task.attempt, "durationMs": task.duration_ms,
            "worker": task.worker, "error": task.error}


def group_to_dict(group: console_pb2.GroupDetail) -> dict[str, Any]:
    return {"groupIndex": group.group_index, "status": group.status, "tasksExpected": group.tasks_expected,
            "tasksCompleted": group.tasks_completed, "tasksFailed": group.tasks_failed,
            "startedAt": timestamp_iso(group, "started_at"), "completedAt": timestamp_iso(group, "completed_at"),
            "tasksRecorded": group.tasks_recorded, "durationMsTotal": group.duration_ms_total,
            "durationMsMax": group.duration_ms_max, "tasksRetried": group.tasks_retried,
            "slowest": [_attempt(t) for t in group.slowest], "troubled": [_attempt(t) for t in group.troubled]}


def workers_to_dict(workers: console_pb2.GetWorkersResponse) -> dict[str, Any]:
    return {
        "consumers": [{"name": c.name, "pending": c.pending, "idleMs": c.idle_ms, "inactiveMs": c.inactive_ms,
                       "live": c.live}
                      for c in workers.consumers],
        "inFlight": [{"consumer": t.consumer, "entryId": t.entry_id, "requestId": t.request_id,
                      "groupIndex": t.group_index, "taskId": t.task_id, "attempt": t.attempt,
                      "deliveries": t.deliveries, "idleMs": t.idle_ms} for t in workers.in_flight],
        "streams": [{"stream": s.stream, "group": s.group, "consumers": s.consumers, "pending": s.pending,
                     "lag": s.lag, "reclaimed": s.reclaimed, "length": s.length} for s in workers.streams],
        "deadLetters": [{"entryId": d.entry_id, "requestId": d.request_id, "groupIndex": d.group_index,
                         "taskId": d.task_id, "consumer": d.consumer, "deliveries": d.deliveries, "error": d.error,
                         "deadLetteredAt": d.dead_lettered_at, "fields": dict(d.fields)}
                        for d in workers.dead_letters],
        "deadLettersTotal": workers.dead_letters_total,
    }


async def list_requests(request: web.Request) -> web.Response:
    """GET /console/api/requests?limit=&status=&q="""
    status = request.query.get("status", "")
    if status and status not in REQUEST_STATES:
        raise InvalidArgument(f"status must be one of {', '.join(REQUEST_STATES)}", {"field": "status"})
    query = console_pb2.ListRequestsRequest(limit=_query_int(request, "limit"), status=status,
                                            id_contains=request.query.get("q", "").strip())
    answer = await request.app[CLIENT].list_requests(query, timeout=request.app[SETTINGS].call_timeout_s)
    return web.json_response({"requests": [summary_to_dict(s) for s in answer.requests], "indexed": answer.indexed})


async def request_detail(request: web.Request) -> web.Response:
    """GET /console/api/requests/{requestId}"""
    query = console_pb2.GetRequestDetailRequest(request_id=request.match_info["requestId"],
                                                slowest=_query_int(request, "slowest"))
    answer = await request.app[CLIENT].request_detail(query, timeout=request.app[SETTINGS].call_timeout_s)
    return web.json_response({"status": status_to_dict(answer.status), "priority": answer.priority,
                              "retryCount": answer.retry_count, "canCancel": answer.can_cancel,
                              "groups": [group_to_dict(g) for g in answer.groups]})


async def workers(request: web.Request) -> web.Response:
    """GET /console/api/workers?deadLetters="""
    query = console_pb2.GetWorkersRequest(dead_letters=_query_int(request, "deadLetters"))
    answer = await request.app[CLIENT].workers(query, timeout=request.app[SETTINGS].call_timeout_s)
    return web.json_response(workers_to_dict(answer))


async def capabilities(request: web.Request) -> web.Response:
    return web.json_response(CAPABILITIES)


def add_routes(app: web.Application) -> None:
    app.router.add_get(CONSOLE_PATH, page, allow_head=False)
    app.router.add_get(STATIC_PREFIX + "{asset}", asset, allow_head=False)
    app.router.add_get("/console/api/requests", list_requests, allow_head=False)
    app.router.add_get("/console/api/requests/{requestId}", request_detail, allow_head=False)
    app.router.add_get("/console/api/workers", workers, allow_head=False)
    app.router.add_get("/console/api/capabilities", capabilities, allow_head=False)
