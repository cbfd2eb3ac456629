"""GET /valuation/{id}/status and /results, against a scripted vnapi."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from aiohttp.test_utils import TestClient

from tests.gateway.scripted import ScriptedVnapi
from vn.v1 import valuation_pb2
from vncommon.errors import RequestExpired, RequestFailed, RequestNotFound, ResultNotReady

RECEIVED = datetime(2025, 6, 30, 10, 0, 0, 123000, tzinfo=UTC)
RESPONSE_XML = b'<vnml-response requestId="req-9" status="succeeded"/>'


def running_status() -> valuation_pb2.GetStatusResponse:
    return valuation_pb2.GetStatusResponse(
        request_id="req-9",
        status=valuation_pb2.REQUEST_STATUS_RECEIVED,
        current_group=0,
        group_count=2,
        received_at=RECEIVED,
        progress=valuation_pb2.Progress(groups_completed=0, tasks_expected=4, tasks_completed=1, tasks_failed=0),
    )


async def test_status_of_a_received_request_has_null_for_times_not_reached(
    gateway: TestClient[Any, Any], vnapi: ScriptedVnapi
) -> None:
    vnapi.service.status_answer = running_status()
    response = await gateway.get("/valuation/req-9/status")
    assert response.status == 200
    assert await response.json() == {
        "requestId": "req-9",
        "status": "received",
        "currentGroup": 0,
        "groupCount": 2,
        "receivedAt": "2025-06-30T10:00:00.123Z",
        "startedAt": None,
        "completedAt": None,
        "priority": "normal",
        "deadlineAt": None,
        "progress": {"groupsCompleted": 0, "tasksExpected": 4, "tasksCompleted": 1, "tasksFailed": 0},
    }
    assert vnapi.service.calls("GetStatus")[0].request.request_id == "req-9"


async def test_status_of_a_failed_request_carries_its_detail(
    gateway: TestClient[Any, Any], vnapi: ScriptedVnapi
) -> None:
    answer = running_status()
    answer.status = valuation_pb2.REQUEST_STATUS_FAILED
    answer.started_at.FromDatetime(RECEIVED)
    answer.completed_at.FromDatetime(RECEIVED)
    answer.failure_detail = json.dumps({"error": "hydration failed"})
    vnapi.service.status_answer = answer
    body = await (await gateway.get("/valuation/req-9/status")).json()
    assert (body["status"], body["completedAt"], body["detail"]) == (
        "failed", "2025-06-30T10:00:00.123Z", {"error": "hydration failed"}
    )


async def test_status_of_an_unknown_request_is_404(gateway: TestClient[Any, Any], vnapi: ScriptedVnapi) -> None:
    vnapi.service.status_answer = RequestNotFound("no request 'nope'")
    response = await gateway.get("/valuation/nope/status")
    assert response.status == 404
    assert (await response.json())["reason"] == "REQUEST_NOT_FOUND"


async def test_results_of_a_succeeded_request_are_the_response_xml(
    gateway: TestClient[Any, Any], vnapi: ScriptedVnapi
) -> None:
    vnapi.service.results_answer = valuation_pb2.GetResultsResponse(request_id="req-9", response_xml=RESPONSE_XML)
    response = await gateway.get("/valuation/req-9/results")
    assert response.status == 200
    assert response.content_type == "application/xml"
    assert await response.read() == RESPONSE_XML


async def test_results_of_a_running_request_are_404_not_yet_available_with_its_status(
    gateway: TestClient[Any, Any], vnapi: ScriptedVnapi
) -> None:
    vnapi.service.results_answer = ResultNotReady("request is still running", {"status": "started"})
    response = await gateway.get("/valuation/req-9/results")
    assert response.status == 404
    body = await response.json()
    assert (body["message"], body["status"], body["requestId"]) == ("Result not yet available", "started", "req-9")


async def test_results_of_an_unknown_request_are_404(gateway: TestClient[Any, Any], vnapi: ScriptedVnapi) -> None:
    vnapi.service.results_answer = RequestNotFound("no request 'nope'")
    response = await gateway.get("/valuation/nope/results")
    assert response.status == 404
    body = await response.json()
    assert body["reason"] == "REQUEST_NOT_FOUND" and "status" not in body


async def test_results_of_a_purged_request_are_410(gateway: TestClient[Any, Any], vnapi: ScriptedVnapi) -> None:
    vnapi.service.results_answer = RequestExpired("request 'old' expired")
    response = await gateway.get("/valuation/old/results")
    assert response.status == 410
    assert (await response.json())["reason"] == "REQUEST_EXPIRED"


async def test_results_of_a_failed_request_are_422_with_the_detail(
    gateway: TestClient[Any, Any], vnapi: ScriptedVnapi
) -> None:
    detail = {"group": "price", "taskId": "1", "attempts": 3, "error": "exit code 2"}
    vnapi.service.results_answer = RequestFailed("request failed", {"detail": json.dumps(detail)})
    response = await gateway.get("/valuation/req-9/results")
    assert response.status == 422
    body = await response.json()
    assert {k: body[k] for k in ("requestId", "status", "detail")} == {
        "requestId": "req-9", "status": "failed", "detail": detail
    }
    assert body["message"]


async def test_status_requests_carry_the_trace_id_in_the_answer(
    gateway: TestClient[Any, Any], vnapi: ScriptedVnapi
) -> None:
    vnapi.service.status_answer = RequestNotFound("no request")
    response = await gateway.get("/valuation/x/status", headers={"X-Trace-Id": "t-404"})
    assert response.headers["X-Trace-Id"] == "t-404"


async def test_an_unexpected_vnapi_error_is_500_json(gateway: TestClient[Any, Any], vnapi: ScriptedVnapi) -> None:
    async def crash(request: Any) -> Any:
        raise RuntimeError("bug in the servicer")

    vnapi.service.status_answer = crash
    response = await gateway.get("/valuation/x/status")
    assert response.status == 500
    assert (await response.json())["message"]
