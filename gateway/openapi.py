"""The OpenAPI 3.0 description of the gateway, served at GET /openapi.json.

It is built from the same constants the handlers use, and the test suite checks that every
(method, path, status) the gateway answers with is described here.
"""

from __future__ import annotations

from typing import Any

from gateway.intake import MAX_IDEMPOTENCY_KEY_CHARS
from gateway.openapi_console import CONSOLE_SCHEMAS, console_paths
from gateway.settings import GatewaySettings
from vncommon.requestid import REQUEST_ID_PATTERN
from vncommon.state import JSON_STATUSES, PRIORITIES, Status, SubmitAnswer
from vncommon.trace import MAX_TRACE_ID_CHARS, TRACE_ID_PATTERN

OPENAPI_VERSION = "3.0.3"
Doc = dict[str, Any]


def _ref(name: str) -> Doc:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: Doc, description: str, headers: Doc | None = None) -> Doc:
    response: Doc = {"description": description, "content": {"application/json": {"schema": schema}}}
    response["headers"] = {"X-Trace-Id": {"$ref": "#/components/headers/TraceId"}, **(headers or {})}
    return response


def _xml(description: str, headers: Doc | None = None) -> Doc:
    response: Doc = {"description": description,
                     "content": {"application/xml": {"schema": {"type": "string", "format": "binary"}}}}
    response["headers"] = {"X-Trace-Id": {"$ref": "#/components/headers/TraceId"}, **(headers or {})}
    return response


def _common(response_name: str) -> Doc:
    return {"$ref": f"#/components/responses/{response_name}"}


def _obj(properties: Doc, required: list[str] | None = None) -> Doc:
    return {"type": "object", "properties": properties, "required": required or list(properties)}


_STRING = {"type": "string"}
_INT = {"type": "integer", "minimum": 0}
_TIME = {"type": "string", "format": "date-time", "nullable": True}
_ERROR_FIELDS: Doc = {"message": _STRING, "reason": {"type": "string", "description": "stable UPPER_SNAKE word"}}

SCHEMAS: Doc = {
    "Error": _obj(_ERROR_FIELDS, ["message"]),
    "MalformedXmlError": _obj({**_ERROR_FIELDS, "line": {**_INT, "nullable": True},
                               "column": {**_INT, "nullable": True}}, ["message", "line", "column"]),
    "Detail": {"description": "failure detail: a JSON object when the service sent JSON, else its text",
               "oneOf": [{"type": "object", "additionalProperties": True}, _STRING]},
    "Accepted": _obj({"requestId": _STRING, "status": {"type": "string", "enum": [SubmitAnswer.ACCEPTED.value]}}),
    "Pending": _obj({"requestId": _STRING, "status": {"type": "string", "enum": [SubmitAnswer.PENDING.value]}}),
    "ProcessingFailed": _obj({"message": {"type": "string", "enum": ["Processing failed"]},
                              "requestId": _STRING, "detail": _ref("Detail")}),
    "Progress": _obj({"groupsCompleted": _INT, "tasksExpected": _INT, "tasksCompleted": _INT,
                      "tasksFailed": _INT}),
    "Status": _obj(
        {"requestId": _STRING,
         "status": {"type": "string", "enum": list(JSON_STATUSES)},
         "currentGroup": {**_INT, "description": "0-based index of the group running now (or last run)"},
         "groupCount": _INT, "receivedAt": _TIME, "startedAt": _TIME, "completedAt": _TIME,
         "priority": {"type": "string", "enum": [str(p) for p in PRIORITIES]},
         "deadlineAt": {**_TIME, "description": "when the request is cancelled if it has not ended"},
         "progress": _ref("Progress"), "detail": _ref("Detail")},
        ["requestId", "status", "currentGroup", "groupCount", "receivedAt", "startedAt", "completedAt",
         "priority", "deadlineAt", "progress"],
    ),
    "NotReady": _obj({**_ERROR_FIELDS, "message": {"type": "string", "enum": ["Result not yet available"]},
                      "requestId": _STRING, "status": _STRING}, ["message", "status"]),
    "RequestFailed": _obj({**_ERROR_FIELDS, "requestId": _STRING,
                           "status": {"type": "string", "enum": [Status.FAILED.value]}, "detail": _ref("Detail")},
                          ["message", "requestId", "status", "detail"]),
    "RequestCancelled": _obj({**_ERROR_FIELDS, "requestId": _STRING,
                              "status": {"type": "string", "enum": [Status.CANCELLED.value]},
                              "detail": _ref("Detail")}, ["message", "requestId", "status", "detail"]),
    "RequestFinished": _obj({**_ERROR_FIELDS, "requestId": _STRING,
                             "status": {"type": "string", "enum": [Status.SUCCEEDED.value, Status.FAILED.value]}},
                            ["message", "requestId", "status"]),
    "CancelAccepted": _obj({"requestId": _STRING, "status": {
        "type": "string", "enum": list(JSON_STATUSES), "description": "the status the request had"}}),
    "Health": _obj({"status": {"type": "string", "enum": ["ok"]}}),
    "HealthDown": _obj({"status": {"type": "string", "enum": ["unavailable"]}, "message": _STRING,
                        "down": {"type": "array", "items": {"type": "string", "enum": ["redis", "vnapi"]}}}),
}

RESPONSES: Doc = {
    "Unauthorized": {**_json(_ref("Error"), "Missing or invalid bearer token (when GATEWAY_API_TOKENS is set), or "
                                            "an Authorization header that is not UTF-8"),
                     "headers": {"WWW-Authenticate": {"schema": _STRING},
                                 "X-Trace-Id": {"$ref": "#/components/headers/TraceId"}}},
    "BadHeader": _json(_ref("Error"), "a header is not UTF-8 (Idempotency-Key, any X-*), or X-Trace-Id is not "
                                      "1-128 characters from A-Z a-z 0-9 . _ : -"),
    "Internal": _json(_ref("Error"), "Unexpected error; the gateway or vnapi log has the details"),
    "Unavailable": _json(_ref("Error"), "vnapi is unreachable"),
    "Timeout": _json(_ref("Error"), "vnapi did not answer before the gateway's deadline"),
}

# A small request every deployment with the example pricer answers; the documented body, and the one
# API fuzzers start from.
EXAMPLE_REQUEST = (
    '<vnml><project name="example"><market name="M"><yield>0.0415</yield></market><portfolio>'
    '<instrument name="I1"><coupon>0.04</coupon><maturityYears>2</maturityYears><notional>1000000</notional>'
    '</instrument></portfolio><group name="price"><valuation name="bond" '
    'use="vn:link(/vnml/project/portfolio, instrument)"><instrument select="."/>'
    '<market select="/vnml/project/market"/><analytics><price><amount/></price></analytics></valuation>'
    '</group></project></vnml>'
)


def _follow(request_id: str) -> Doc:
    """OpenAPI links from a submission to its status and results (`request_id`: a runtime expression)."""
    return {name: {"operationId": operation, "parameters": {"requestId": request_id}}
            for name, operation in (("status", "getStatus"), ("results", "getResults"), ("cancel", "cancelValuation"),
                                    ("events", "streamEvents"), ("console", "consoleRequest"))}


_REQUEST_ID_HEADERS: Doc = {
    "X-Request-Id": {"schema": _STRING, "description": "id of the request"},
    "Location": {"schema": _STRING, "description": "its status URL"},
}
_REQUEST_ID_PARAM: Doc = {"name": "requestId", "in": "path", "required": True, "schema": _STRING}
# A call that changes a request refuses an id that cannot be one (400) rather than looking it up.
_REQUEST_ID_STRICT: Doc = {**_REQUEST_ID_PARAM, "schema": {"type": "string", "pattern": REQUEST_ID_PATTERN}}
_TRACE_PARAM: Doc = {"$ref": "#/components/parameters/TraceId"}
# Every route checks its headers (400) and may refuse a malformed Authorization (401).
_HEADER_ERRORS: Doc = {"400": _common("BadHeader"), "401": _common("Unauthorized")}
_SERVICE_ERRORS: Doc = {**_HEADER_ERRORS, "500": _common("Internal"), "503": _common("Unavailable"),
                        "504": _common("Timeout")}


def _submit_operation(settings: GatewaySettings) -> Doc:
    return {
        "operationId": "submitValuation",
        "summary": "Submit a VNML request",
        "description": "Every X-* header is kept as request metadata. With sync=Y the call waits up to "
                       f"{settings.sync_wait_timeout_ms} ms (SYNC_WAIT_TIMEOUT_MS) for the outcome.",
        "parameters": [
            {"name": "sync", "in": "query", "required": False,
             "schema": {"type": "string", "enum": ["Y", "N", "y", "n"], "default": "N"}},
            {"name": "Idempotency-Key", "in": "header", "required": False,
             "schema": {"type": "string", "maxLength": MAX_IDEMPOTENCY_KEY_CHARS},
             "description": "the same key with the same body returns the same requestId"},
            {"name": "X-Priority", "in": "header", "required": False,
             "schema": {"type": "string", "enum": [str(p) for p in PRIORITIES], "default": "normal"},
             "description": "workers prefer higher priorities; requests of one priority share them fairly"},
            {"name": "X-Deadline-Ms", "in": "header", "required": False,
             "schema": {"type": "string", "pattern": "^[0-9]{1,12}$"},
             "description": "cancel the request (reason DEADLINE_EXCEEDED) if it has not ended this many "
                            "milliseconds after it was received; at most REQUEST_TTL_SECONDS"},
            _TRACE_PARAM,
        ],
        "requestBody": {
            "required": True,
            "description": f"the VNML document, at most {settings.payload_max_bytes} bytes (PAYLOAD_MAX_BYTES)",
            "content": {kind: {"schema": {"type": "string", "format": "binary"}, "example": EXAMPLE_REQUEST}
                        for kind in ("application/xml", "text/xml")},
        },
        "responses": {
            **_SERVICE_ERRORS,  # first: the entries below refine its 400 and 500
            "200": {**_xml("sync: the response XML of the succeeded request", {"X-Request-Id": {"schema": _STRING}}),
                    "links": _follow("$response.header.X-Request-Id")},
            "202": {**_json({"oneOf": [_ref("Accepted"), _ref("Pending")]},
                            "async: accepted; sync: still running when the wait ended (pending)", _REQUEST_ID_HEADERS),
                    "links": _follow("$response.body#/requestId")},
            "400": _json({"anyOf": [_ref("MalformedXmlError"), _ref("Error")]},
                         "sync not Y/N, empty body, malformed XML (line/column), invalid VNML, "
                         "Idempotency-Key too long, a header not UTF-8, an invalid X-Trace-Id"),
            "409": _json({"anyOf": [_ref("RequestCancelled"), _ref("Error")]},
                         "Idempotency-Key reused with a different body; sync: the request was cancelled"),
            "413": _json(_ref("Error"), "body larger than PAYLOAD_MAX_BYTES"),
            "415": _json(_ref("Error"), "Content-Type is not application/xml or text/xml"),
            "500": _json({"anyOf": [_ref("ProcessingFailed"), _ref("Error")]},
                         "sync: the request failed (Processing failed); otherwise an unexpected error"),
        },
    }


def _paths(settings: GatewaySettings) -> Doc:
    public: list[Doc] = []
    return {
        "/valuation": {"post": _submit_operation(settings)},
        "/valuation/{requestId}/status": {"get": {
            "operationId": "getStatus", "summary": "Where a request is",
            "parameters": [_REQUEST_ID_PARAM, _TRACE_PARAM],
            "responses": {"200": _json(_ref("Status"), "the request's status; absent times are null"),
                          "404": _json(_ref("Error"), "unknown request id"), **_SERVICE_ERRORS},
        }},
        "/valuation/{requestId}/results": {"get": {
            "operationId": "getResults", "summary": "The response XML of a succeeded request",
            "parameters": [_REQUEST_ID_PARAM, _TRACE_PARAM],
            "responses": {
                "200": _xml("the response XML"),
                "404": _json({"anyOf": [_ref("NotReady"), _ref("Error")]}, "still running, or unknown id"),
                "410": _json(_ref("Error"), "expired: the request's data was purged after its TTL"),
                "409": _json(_ref("RequestCancelled"), "the request was cancelled (reason REQUEST_CANCELLED)"),
                "422": _json(_ref("RequestFailed"), "the request failed"),
                **_SERVICE_ERRORS,
            },
        }},
        "/valuation/{requestId}/cancel": {"post": {
            "operationId": "cancelValuation", "summary": "Cancel a request that has not ended",
            "description": "Its work stops and it ends as cancelled; cancelling a cancelled request again "
                           "answers 202 as well.",
            "parameters": [_REQUEST_ID_STRICT, _TRACE_PARAM],
            "responses": {
                **_SERVICE_ERRORS,
                "202": _json(_ref("CancelAccepted"), "cancelled; `status` is the status it had"),
                "400": _json(_ref("Error"), "a request id that cannot be one, or a header not UTF-8"),
                "404": _json(_ref("Error"), "unknown request id"),
                "409": _json(_ref("RequestFinished"), "the request already succeeded or failed"),
                "410": _json(_ref("Error"), "expired: the request's data was purged after its TTL"),
            },
        }},
        "/healthz": {"get": {
            "operationId": "health", "summary": "Whether Redis and vnapi answer", "security": public,
            "parameters": [_TRACE_PARAM],
            "responses": {"200": _json(_ref("Health"), "both answer"),
                          "503": _json(_ref("HealthDown"), "something is down"), **_HEADER_ERRORS},
        }},
        "/openapi.json": {"get": {
            "operationId": "openapi", "summary": "This document", "security": public,
            "parameters": [_TRACE_PARAM],
            "responses": {"200": _json({"type": "object"}, "the OpenAPI document"), **_HEADER_ERRORS},
        }},
        "/metrics": {"get": {
            "operationId": "metrics", "summary": "Prometheus metrics", "parameters": [_TRACE_PARAM],
            "responses": {"200": {"description": "text exposition format",
                                  "content": {"text/plain": {"schema": _STRING}}}, **_HEADER_ERRORS},
        }},
        **console_paths(_json, _SERVICE_ERRORS, _HEADER_ERRORS, _TRACE_PARAM, _REQUEST_ID_PARAM),
    }


def build_document(settings: GatewaySettings) -> Doc:
    """The OpenAPI document for these settings (limits and timeouts are written into descriptions)."""
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": "vnml REST gateway", "version": "1.0.0",
                 "description": "Submit VNML valuation requests and follow them. All JSON errors have a "
                                "`message`; every answer carries X-Trace-Id."},
        "paths": _paths(settings),
        "security": [{"bearerAuth": []}] if settings.api_tokens else [],
        "components": {
            "schemas": {**SCHEMAS, **CONSOLE_SCHEMAS},
            "responses": RESPONSES,
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
            "parameters": {"TraceId": {
                "name": "X-Trace-Id", "in": "header", "required": False,
                "schema": {"type": "string", "maxLength": MAX_TRACE_ID_CHARS, "pattern": TRACE_ID_PATTERN},
                "description": "carried through every service and log line; generated when absent or empty; "
                               "any other value is a 400",
            }},
            "headers": {"TraceId": {"schema": _STRING, "description": "the request's trace id"}},
        },
    }
