"""Deadlines, and the control surface over gRPC, REST and `vn`: priorities, deadlines and cancel, with the
clear refusals of bad values that leave running work alone."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import grpc
import pytest
import redis.asyncio as redis

from tests.conftest import ROOT, wait_until
from tests.control.support import cancel, holding_script, recorded_pids, wait_gone
from tests.e2e.helpers import Status, simple_request
from tests.faults.conftest import FaultMeshFactory
from tests.faults.support import assert_one_terminal_event, channel_to, submit, wait_for_end
from vn.v1 import valuation_pb2
from vncommon.grpcutil import decode_error
from vncommon.localmesh import LocalMesh

pytestmark = pytest.mark.timeout(90)

CANCELLED = Status.REQUEST_STATUS_CANCELLED
XML = {"Content-Type": "application/xml"}


def reason_of(detail: str) -> str:
    return str(json.loads(detail)["reason"])


def with_gateway(mesh: LocalMesh) -> str:
    mesh.start("gateway", "gateway", mesh.http_port)
    return mesh.http


async def test_a_request_still_running_at_its_deadline_is_cancelled_with_deadline_exceeded(
        fault_mesh: FaultMeshFactory, redis_client: redis.Redis, tmp_path: Path) -> None:
    log, pids = tmp_path / "executions.log", tmp_path / "pids"
    mesh = fault_mesh(workers=1, VNAS_SCRIPT=str(holding_script(tmp_path, log, pids, hold_s=20)),
                      VNAS_TASK_TIMEOUT_MS="60000")
    channel, api = channel_to(mesh.vnapi_address)
    async with channel:
        started = time.monotonic()
        reply = await api.Submit(valuation_pb2.SubmitRequest(xml=simple_request(1, 2), deadline_ms=800), timeout=10)
        status = await wait_for_end(api, reply.request_id, timeout=20)
        ended_after = time.monotonic() - started
        wait_gone(recorded_pids(pids), within_s=1.0)
    assert status.status == CANCELLED and reason_of(status.failure_detail) == "DEADLINE_EXCEEDED"
    assert status.HasField("deadline_at")
    assert 0.8 <= ended_after < 5.0, ended_after
    await assert_one_terminal_event(redis_client, reply.request_id, "cancelled")


async def test_a_request_that_ends_before_its_deadline_succeeds_and_reports_it_with_its_priority(
        fault_mesh: FaultMeshFactory, redis_client: redis.Redis) -> None:
    mesh = fault_mesh(workers=1)
    channel, api = channel_to(mesh.vnapi_address)
    async with channel:
        reply = await api.Submit(valuation_pb2.SubmitRequest(
            xml=simple_request(1, 2), deadline_ms=60_000, priority=valuation_pb2.PRIORITY_HIGH), timeout=10)
        status = await wait_for_end(api, reply.request_id)
    assert status.status == Status.REQUEST_STATUS_SUCCEEDED
    assert status.priority == valuation_pb2.PRIORITY_HIGH
    remaining = status.deadline_at.ToMilliseconds() - time.time() * 1000
    assert 50_000 < remaining <= 60_000


async def test_bad_priority_and_deadline_are_refused_naming_the_field_and_running_work_goes_on(
        fault_mesh: FaultMeshFactory, redis_client: redis.Redis, tmp_path: Path) -> None:
    log, pids = tmp_path / "executions.log", tmp_path / "pids"
    mesh = fault_mesh(workers=1, VNAS_SCRIPT=str(holding_script(tmp_path, log, pids, hold_s=1)))
    channel, api = channel_to(mesh.vnapi_address)
    async with channel:
        running = await submit(api, simple_request(1, 1))
        for request, field in ((valuation_pb2.SubmitRequest(xml=simple_request(1, 1), priority=9), "priority"),
                               (valuation_pb2.SubmitRequest(xml=simple_request(1, 1), deadline_ms=10**12),
                                "deadline_ms")):
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await api.Submit(request, timeout=10)
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            error = decode_error(caught.value)
            assert error.metadata["field"] == field and field in error.message
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await cancel(api, "{" + running + "}")
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        status = await wait_for_end(api, running, timeout=30)
    assert status.status == Status.REQUEST_STATUS_SUCCEEDED


async def test_rest_cancel_priority_and_deadline(fault_mesh: FaultMeshFactory, redis_client: redis.Redis,
                                                 tmp_path: Path) -> None:
    log, pids = tmp_path / "executions.log", tmp_path / "pids"
    mesh = fault_mesh(workers=1, VNAS_SCRIPT=str(holding_script(tmp_path, log, pids, hold_s=3)),
                      VNAS_CONCURRENCY="4")
    base = with_gateway(mesh)
    body = simple_request(1, 1)
    async with aiohttp.ClientSession(base) as http:
        for headers, word in (({"X-Priority": "urgent"}, "X-Priority"), ({"X-Deadline-Ms": "-5"}, "X-Deadline-Ms"),
                              ({"X-Deadline-Ms": "soon"}, "X-Deadline-Ms"), ({"X-Deadline-Ms": "0"}, "X-Deadline-Ms"),
                              ({"X-Deadline-Ms": "999999999999"}, "deadline_ms")):
            async with http.post("/valuation", data=body, headers={**XML, **headers}) as response:
                assert response.status == 400, headers
                assert word in (await response.json())["message"]

        async with http.post("/valuation", data=body, headers={**XML, "X-Priority": "High"}) as response:
            request_id = (await response.json())["requestId"]

        async def running() -> bool:
            async with http.get(f"/valuation/{request_id}/status") as reply:
                return bool((await reply.json())["status"] == "started")
        await wait_until(running, timeout=20)
        async with http.post(f"/valuation/{request_id}/cancel") as response:
            assert response.status == 202
            assert await response.json() == {"requestId": request_id, "status": "started"}
        async with http.post(f"/valuation/{request_id}/cancel") as response:
            assert (response.status, (await response.json())["status"]) == (202, "cancelled")
        async with http.get(f"/valuation/{request_id}/results") as response:
            answer = await response.json()
            assert (response.status, answer["reason"], answer["status"]) == (409, "REQUEST_CANCELLED", "cancelled")
            assert answer["detail"]["reason"] == "REQUEST_CANCELLED"
        async with http.get(f"/valuation/{request_id}/status") as response:
            status = await response.json()
            assert (status["status"], status["priority"], status["detail"]["reason"]) == (
                "cancelled", "high", "REQUEST_CANCELLED")

        async with http.post("/valuation/0123456789abcdef0123456789abcdef/cancel") as response:
            assert response.status == 404
        async with http.post("/valuation/bad%20id/cancel") as response:
            assert response.status == 400
            assert "request_id" in (await response.json())["message"]

        started = time.monotonic()
        async with http.post("/valuation?sync=Y", data=body, headers={**XML, "X-Deadline-Ms": "700"}) as response:
            answer = await response.json()
            assert (response.status, answer["reason"]) == (409, "REQUEST_CANCELLED")
            assert answer["detail"]["reason"] == "DEADLINE_EXCEEDED"
        assert time.monotonic() - started < 5.0

        async with http.post("/valuation?sync=Y", data=simple_request(1, 1), headers=XML) as response:
            finished_id = response.headers["X-Request-Id"]
            assert response.status == 200
        async with http.post(f"/valuation/{finished_id}/cancel") as response:
            answer = await response.json()
            assert (response.status, answer["reason"], answer["status"]) == (409, "REQUEST_FINISHED", "succeeded")


def vn(mesh: LocalMesh, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "VNAPI_ADDRESS": mesh.vnapi_address, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "vnclient.cli", *args], env=env, capture_output=True, text=True,
                          timeout=30, check=False)


async def test_vn_cancel_prints_the_status_the_request_had_and_refuses_a_finished_one(
        fault_mesh: FaultMeshFactory, redis_client: redis.Redis, tmp_path: Path) -> None:
    log, pids = tmp_path / "executions.log", tmp_path / "pids"
    mesh = fault_mesh(workers=1, VNAS_SCRIPT=str(holding_script(tmp_path, log, pids, hold_s=5)))
    channel, api = channel_to(mesh.vnapi_address)
    async with channel:
        request_id = await submit(api, simple_request(1, 1))
        cancelled = await asyncio.to_thread(vn, mesh, "cancel", request_id)
        assert cancelled.returncode == 0, cancelled.stderr
        assert json.loads(cancelled.stdout)["requestId"] == request_id
        assert (await wait_for_end(api, request_id)).status == CANCELLED
    refused = await asyncio.to_thread(vn, mesh, "cancel", "0123456789abcdef0123456789abcdef")
    assert refused.returncode == 3 and "REQUEST_NOT_FOUND" in refused.stderr and "Traceback" not in refused.stderr
    usage = await asyncio.to_thread(vn, mesh, "submit", "-", "--priority", "urgent")
    assert usage.returncode == 2 and "not a priority" in usage.stderr
