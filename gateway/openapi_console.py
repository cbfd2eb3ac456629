"""The OpenAPI description of the event stream and the web console's routes (merged by gateway.openapi)."""

from __future__ import annotations

from typing import Any

from gateway.console import ASSETS
from gateway.events import LAST_EVENT_ID_DIGITS
from vncommon.state import JSON_STATUSES, REQUEST_STATES, Status

Doc = dict[str, Any]
_STRING: Doc = {"type": "string"}
_INT: Doc = {"type": "integer", "minimum": 0}
_TIME: Doc = {"type": "string", "format": "date-time", "nullable": True}
_BOOL: Doc = {"type": "boolean"}
_EVENT_NAMES = [str(status) for status in Status]


def _ref(name: str) -> Doc:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(properties: Doc) -> Doc:
    return {"type": "object", "properties": properties, "required": list(properties)}


def _array(item: Doc) -> Doc:
    return {"type": "array", "items": item}


# One parsed server-sent event (heartbeat comments carry none).
_SSE_EVENT: Doc = {"type": "object", "required": ["event", "data"],
                   "properties": {"event": {"type": "string", "enum": [*_EVENT_NAMES, "progress", "error"]},
                                  "id": {"type": "string", "pattern": "^[0-9]+$"}, "data": _STRING,
                                  "retry": _INT}}
_ATTEMPT = _obj({"taskId": _STRING, "status": _STRING, "attempt": _INT, "durationMs": _INT, "worker": _STRING,
                 "error": _STRING})
CONSOLE_SCHEMAS: Doc = {
    "RequestSummary": _obj({
        "requestId": _STRING, "status": {"type": "string", "enum": list(JSON_STATUSES)}, "priority": _STRING,
        "groupCount": _INT, "groupsCompleted": _INT, "tasksTotal": _INT, "tasksCompleted": _INT,
        "retryCount": _INT, "receivedAt": _TIME, "startedAt": _TIME, "completedAt": _TIME}),
    "RequestList": _obj({"requests": _array(_ref("RequestSummary")),
                         "indexed": {**_INT, "description": "requests in the recent-request index"}}),
    "TaskAttempt": _ATTEMPT,
    "GroupDetail": _obj({
        "groupIndex": _INT, "status": _STRING, "tasksExpected": _INT, "tasksCompleted": _INT, "tasksFailed": _INT,
        "startedAt": _TIME, "completedAt": _TIME, "tasksRecorded": _INT, "durationMsTotal": _INT,
        "durationMsMax": _INT, "tasksRetried": _INT, "slowest": _array(_ref("TaskAttempt")),
        "troubled": _array(_ref("TaskAttempt"))}),
    "RequestDetail": _obj({"status": _ref("Status"), "priority": _STRING, "retryCount": _INT, "canCancel": _BOOL,
                           "groups": _array(_ref("GroupDetail"))}),
    "Workers": _obj({
        "consumers": _array(_obj({"name": _STRING, "pending": _INT, "idleMs": _INT, "inactiveMs": _INT,
                                  "live": _BOOL})),
        "inFlight": _array(_obj({"consumer": _STRING, "entryId": _STRING, "requestId": _STRING,
                                 "groupIndex": _INT, "taskId": _STRING, "attempt": _INT, "deliveries": _INT,
                                 "idleMs": _INT})),
        "streams": _array(_obj({"stream": _STRING, "group": _STRING, "consumers": _INT, "pending": _INT,
                                "lag": {"type": "integer", "minimum": -1}, "reclaimed": _INT, "length": _INT})),
        "deadLetters": _array(_obj({"entryId": _STRING, "requestId": _STRING, "groupIndex": _INT,
                                    "taskId": _STRING, "consumer": _STRING, "deliveries": _INT, "error": _STRING,
                                    "deadLetteredAt": _STRING,
                                    "fields": {"type": "object", "additionalProperties": _STRING}})),
        "deadLettersTotal": _INT}),
    "Capabilities": _obj({"cancel": _BOOL}),
}


def console_paths(json: Any, errors: Doc, header_errors: Doc, trace: Doc, request_id: Doc) -> Doc:
    """Paths of the stream and the console; `json` builds a JSON answer, the Docs are shared pieces."""
    public: list[Doc] = []
    bad = json(_ref("Error"), "a parameter is out of range (the message names it)")
    missing = json(_ref("Error"), "unknown request id")
    number = {"type": "integer", "minimum": 0}
    return {
        "/valuation/{requestId}/events": {"get": {
            "operationId": "streamEvents", "summary": "The request's lifecycle events as server-sent events",
            "description": "Every lifecycle event from the first, `id:` = its sequence; with Last-Event-ID the "
                           "events after it. `progress` events (no id) carry the running group's tasks "
                           "completed / expected; comment lines are heartbeats; ends after the terminal event.",
            "parameters": [request_id, trace,
                           {"name": "Last-Event-ID", "in": "header", "required": False,
                            "schema": {"type": "string", "pattern": f"^[0-9]{{0,{LAST_EVENT_ID_DIGITS}}}$"}}],
            "responses": {"200": {"description": "one lifecycle or progress event per entry; data is JSON",
                                  "content": {"text/event-stream": {"schema": _SSE_EVENT}}},
                          **errors, "400": bad, "404": missing,
                          "410": json(_ref("Error"), "expired: the request's data was purged")},
        }},
        "/console": {"get": {
            "operationId": "consolePage", "summary": "The web console (HTML; holds no data)", "security": public,
            "parameters": [trace],
            "responses": {"200": {"description": "the page", "content": {"text/html": {"schema": _STRING}}},
                          **header_errors},
        }},
        "/console/static/{asset}": {"get": {
            "operationId": "consoleAsset", "summary": "A script or style sheet of the console", "security": public,
            "parameters": [{"name": "asset", "in": "path", "required": True,
                            "schema": {"type": "string", "enum": sorted(ASSETS)}}, trace],
            "responses": {"200": {"description": "the file",
                                  "content": {"text/javascript": {"schema": _STRING},
                                              "text/css": {"schema": _STRING}}},
                          "404": json(_ref("Error"), "no such console file"), **header_errors},
        }},
        "/console/api/requests": {"get": {
            "operationId": "consoleRequests", "summary": "Recent requests, newest first",
            "parameters": [
                {"name": "limit", "in": "query", "required": False, "schema": {**number, "maximum": 500}},
                {"name": "status", "in": "query", "required": False,
                 "schema": {"type": "string", "enum": ["", *REQUEST_STATES]}},
                {"name": "q", "in": "query", "required": False, "schema": _STRING,
                 "description": "only ids containing this text"}, trace],
            "responses": {"200": json(_ref("RequestList"), "the requests"), "400": bad, **errors},
        }},
        "/console/api/requests/{requestId}": {"get": {
            "operationId": "consoleRequest", "summary": "One request's groups, task durations, retries, failures",
            "parameters": [request_id, {"name": "slowest", "in": "query", "required": False,
                                        "schema": {**number, "maximum": 100}}, trace],
            "responses": {"200": json(_ref("RequestDetail"), "the request"), "400": bad, "404": missing,
                          "410": json(_ref("Error"), "expired"), **errors},
        }},
        "/console/api/workers": {"get": {
            "operationId": "consoleWorkers", "summary": "Task workers, in-flight tasks, backlogs, dead letters",
            "parameters": [{"name": "deadLetters", "in": "query", "required": False,
                            "schema": {**number, "maximum": 500}}, trace],
            "responses": {"200": json(_ref("Workers"), "the workers"), "400": bad, **errors},
        }},
        "/console/api/capabilities": {"get": {
            "operationId": "consoleCapabilities", "summary": "What the API offers the console (cancel: not yet)",
            "parameters": [trace],
            "responses": {"200": json(_ref("Capabilities"), "the capabilities"), **header_errors},
        }},
    }
