"""GetStatus and GetResults read the request back as vnvs left it."""

from __future__ import annotations

import json

import grpc
import pytest

from tests.vnapi.conftest import RunningVnapi
from tests.vnapi.support import RESPONSE_XML, VnvsStandIn, submit_request
from vn.v1 import valuation_pb2
from vncommon.errors import VnError
from vncommon.grpcutil import decode_error


async def _status(vnapi: RunningVnapi, request_id: str) -> valuation_pb2.GetStatusResponse:
    return await vnapi.stub.GetStatus(valuation_pb2.GetStatusRequest(request_id=request_id), timeout=5)


async def _results_error(vnapi: RunningVnapi, request_id: str) -> tuple[grpc.StatusCode, VnError]:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await vnapi.stub.GetResults(valuation_pb2.GetResultsRequest(request_id=request_id), timeout=5)
    return caught.value.code(), decode_error(caught.value)


async def test_status_of_a_new_request_leaves_started_and_completed_times_unset(vnapi: RunningVnapi) -> None:
    answer = await vnapi.stub.Submit(submit_request(), timeout=5)
    status = await _status(vnapi, answer.request_id)
    assert status.request_id == answer.request_id
    assert (status.current_group, status.group_count) == (0, 2)
    assert status.HasField("received_at")
    assert not status.HasField("started_at") and not status.HasField("completed_at")
    assert status.progress.groups_completed == 0 and status.progress.tasks_expected == 0
    assert status.failure_detail == ""


async def test_status_reports_the_current_group_progress(vnapi: RunningVnapi, vnvs: VnvsStandIn) -> None:
    rid = (await vnapi.stub.Submit(submit_request(), timeout=5)).request_id
    await vnvs.start(rid)
    await vnvs.run_group(rid, 0, tasks=3)
    await vnvs.client.hset(f"state:request:{{{rid}}}:group:1",
                           mapping={"expected": 4, "completed": 1, "failed": 1, "status": "running"})
    await vnvs.client.hset(f"state:request:{{{rid}}}", "currentGroup", 1)
    status = await _status(vnapi, rid)
    assert status.status == valuation_pb2.REQUEST_STATUS_STARTED and status.HasField("started_at")
    assert status.current_group == 1
    progress = status.progress
    assert (progress.groups_completed, progress.tasks_expected, progress.tasks_completed,
            progress.tasks_failed) == (1, 4, 1, 1)


async def test_status_of_a_succeeded_request_counts_every_group(vnapi: RunningVnapi, vnvs: VnvsStandIn) -> None:
    rid = (await vnapi.stub.Submit(submit_request(), timeout=5)).request_id
    await vnvs.start(rid)
    await vnvs.succeed(rid)
    status = await _status(vnapi, rid)
    assert status.status == valuation_pb2.REQUEST_STATUS_SUCCEEDED and status.HasField("completed_at")
    assert status.progress.groups_completed == 2


async def test_status_of_a_failed_request_carries_the_failure_detail(vnapi: RunningVnapi, vnvs: VnvsStandIn) -> None:
    rid = (await vnapi.stub.Submit(submit_request(), timeout=5)).request_id
    raw = await vnvs.fail(rid, {"error": "retries exhausted"})
    status = await _status(vnapi, rid)
    assert status.status == valuation_pb2.REQUEST_STATUS_FAILED and json.loads(status.failure_detail) == json.loads(raw)


async def test_status_of_an_unknown_request_is_not_found(vnapi: RunningVnapi) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _status(vnapi, "0" * 32)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert decode_error(caught.value).reason == "REQUEST_NOT_FOUND"


async def test_status_without_a_request_id_is_an_invalid_argument(vnapi: RunningVnapi) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _status(vnapi, "")
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_results_of_a_running_request_are_not_ready_and_say_its_status(vnapi: RunningVnapi) -> None:
    rid = (await vnapi.stub.Submit(submit_request(), timeout=5)).request_id
    code, error = await _results_error(vnapi, rid)
    assert (code, error.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "RESULT_NOT_READY")
    assert error.metadata["status"] == "received"


async def test_results_of_a_failed_request_are_request_failed_with_the_detail(
    vnapi: RunningVnapi, vnvs: VnvsStandIn
) -> None:
    rid = (await vnapi.stub.Submit(submit_request(), timeout=5)).request_id
    raw = await vnvs.fail(rid, {"error": "script exited 3"})
    code, error = await _results_error(vnapi, rid)
    assert (code, error.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "REQUEST_FAILED")
    assert json.loads(error.metadata["detail"]) == json.loads(raw)


async def test_results_of_a_succeeded_request_are_the_stored_response(vnapi: RunningVnapi, vnvs: VnvsStandIn) -> None:
    rid = (await vnapi.stub.Submit(submit_request(), timeout=5)).request_id
    await vnvs.succeed(rid)
    results = await vnapi.stub.GetResults(valuation_pb2.GetResultsRequest(request_id=rid), timeout=5)
    assert results.response_xml == RESPONSE_XML and results.request_id == rid


async def test_results_of_an_unknown_request_are_not_found(vnapi: RunningVnapi) -> None:
    code, error = await _results_error(vnapi, "f" * 32)
    assert (code, error.reason) == (grpc.StatusCode.NOT_FOUND, "REQUEST_NOT_FOUND")


async def test_results_of_an_id_that_cannot_exist_are_not_found(vnapi: RunningVnapi) -> None:
    _, error = await _results_error(vnapi, "{a}:b")
    assert error.reason == "REQUEST_NOT_FOUND"


async def test_results_and_status_of_a_purged_request_are_expired(vnapi: RunningVnapi, vnvs: VnvsStandIn) -> None:
    rid = (await vnapi.stub.Submit(submit_request(), timeout=5)).request_id
    await vnvs.succeed(rid)
    await vnvs.expire(rid)
    code, error = await _results_error(vnapi, rid)
    assert (code, error.reason) == (grpc.StatusCode.NOT_FOUND, "REQUEST_EXPIRED")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _status(vnapi, rid)
    assert decode_error(caught.value).reason == "REQUEST_EXPIRED"
