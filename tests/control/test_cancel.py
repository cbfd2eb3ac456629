"""Cancel on a mesh of real processes: before start, mid-group, in a retry backoff, during a long script,
racing completion, after the orchestrator died, and from a waiting sync submitter."""

from __future__ import annotations

import asyncio
import json
import random
import signal
import time
from pathlib import Path

import grpc
import pytest
import redis.asyncio as redis

from tests.conftest import wait_until
from tests.control.support import (
    cancel,
    cancel_error,
    failing_first_script,
    holding_script,
    recorded_pids,
    wait_gone,
)
from tests.e2e.helpers import Status, simple_request
from tests.faults.conftest import FaultMeshFactory, free_port
from tests.faults.support import (
    assert_one_terminal_event,
    channel_to,
    counting_script,
    executions,
    log_lines,
    submit,
    wait_for_end,
)
from vn.v1 import valuation_pb2
from vncommon import keys
from vncommon.grpcutil import decode_error

pytestmark = pytest.mark.timeout(90)

CANCELLED = Status.REQUEST_STATUS_CANCELLED
FAST_TAKEOVER = {"VNVS_LEASE_MS": "1000", "VNVS_RECOVERY_INTERVAL_MS": "200"}


def reason_of(detail: str) -> str:
    return str(json.loads(detail)["reason"])


async def pending_dispatch(client: redis.Redis) -> int:
    summary = await client.xpending(keys.DISPATCH_STREAM, keys.DISPATCH_GROUP)
    return int(summary["pending"])


async def test_a_request_cancelled_before_it_started_never_runs_even_once_an_orchestrator_comes(
        fault_mesh: FaultMeshFactory, redis_client: redis.Redis, tmp_path: Path) -> None:
    log = tmp_path / "executions.log"
    mesh = fault_mesh(workers=1, VNAS_SCRIPT=str(counting_script(tmp_path, log)))
    mesh.kill("vnvs", signal.SIGTERM)
    channel, api = channel_to(mesh.vnapi_address)
    async with channel:
        request_id = await submit(api, simple_request(groups=2, tasks=3))
        reply = await cancel(api, request_id)
        assert (reply.previous_status, reply.status) == (Status.REQUEST_STATUS_RECEIVED, CANCELLED)
        mesh.start("vnvs", "vnvs", mesh.vnvs_port)
        status = await wait_for_end(api, request_id)
        assert status.status == CANCELLED and reason_of(status.failure_detail) == "REQUEST_CANCELLED"

        async def ingest_settled() -> bool:
            return int((await redis_client.xpending(keys.INGEST_STREAM, keys.INGEST_GROUP))["pending"]) == 0
        await wait_until(ingest_settled, timeout=20)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await api.GetResults(valuation_pb2.GetResultsRequest(request_id=request_id), timeout=5)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert decode_error(caught.value).reason == "REQUEST_CANCELLED"
    assert executions(log, request_id) == {}
    await assert_one_terminal_event(redis_client, request_id, "cancelled")
    assert await redis_client.ttl(keys.request_state_key(request_id)) > 0
    assert await redis_client.ttl(keys.request_xml_key(request_id)) > 0


async def test_cancel_mid_group_stops_dispatching_and_workers_skip_what_is_left(
        fault_mesh: FaultMeshFactory, redis_client: redis.Redis, tmp_path: Path) -> None:
    log, pids = tmp_path / "executions.log", tmp_path / "pids"
    script = holding_script(tmp_path, log, pids, hold_s=0.5)
    mesh = fault_mesh(workers=1, VNAS_SCRIPT=str(script), VNAS_CONCURRENCY="2")
    channel, api = channel_to(mesh.vnapi_address)
    async with channel:
        request_id = await submit(api, simple_request(groups=2, tasks=12))

        async def two_ran() -> bool:
            return len(log_lines(log)) >= 2
        await wait_until(two_ran, timeout=30)
        reply = await cancel(api, request_id)
        assert reply.previous_status == Status.REQUEST_STATUS_STARTED
        ran_at_cancel = len(log_lines(log))
        status = await wait_for_end(api, request_id, timeout=10)
        assert status.status == CANCELLED

        async def nothing_pending() -> bool:
            return await pending_dispatch(redis_client) == 0
        await wait_until(nothing_pending, timeout=10)
        await asyncio.sleep(1.0)
    ran = executions(log, request_id)
    # At most the entries already fetched into free slots when the cancel landed started after it.
    assert len(log_lines(log)) <= ran_at_cancel + 2, ran
    assert all(group == "0" for group, _ in ran), ran  # the second group was never dispatched
    assert len(ran) < 12
    await assert_one_terminal_event(redis_client, request_id, "cancelled")
    assert not await redis_client.exists(keys.updates_stream(request_id))  # the run stopped and retired it


async def test_cancel_during_a_retry_backoff_stops_the_retry(
        fault_mesh: FaultMeshFactory, redis_client: redis.Redis, tmp_path: Path) -> None:
    log = tmp_path / "executions.log"
    mesh = fault_mesh(workers=1, VNAS_SCRIPT=str(failing_first_script(tmp_path, log)),
                      VNVS_RETRY_BASE_MS="3000", VNVS_RETRY_CAP_MS="3000")
    channel, api = channel_to(mesh.vnapi_address)
    async with channel:
        request_id = await submit(api, simple_request(groups=1, tasks=2))

        async def first_attempts_failed() -> bool:
            state = await redis_client.hget(keys.request_state_key(request_id), "status")
            return len(log_lines(log)) >= 2 and state == b"started"
        await wait_until(first_attempts_failed, timeout=30)
        await asyncio.sleep(0.3)  # the failures reached vnvs: both tasks wait in their backoff
        await cancel(api, request_id)
        status = await wait_for_end(api, request_id, timeout=10)
        await asyncio.sleep(3.5)  # past the backoff: a retry would have run by now
    assert status.status == CANCELLED
    assert sorted(line[3] for line in log_lines(log)) == ["1", "1"]
    await assert_one_terminal_event(redis_client, request_id, "cancelled")


async def test_cancel_kills_a_long_running_script_with_its_process_group_within_a_second(
        fault_mesh: FaultMeshFactory, redis_client: redis.Redis, tmp_path: Path) -> None:
    log, pids = tmp_path / "executions.log", tmp_path / "pids"
    mesh = fault_mesh(workers=1, VNAS_SCRIPT=str(holding_script(tmp_path, log, pids, hold_s=60)),
                      VNAS_TASK_TIMEOUT_MS="120000")
    channel, api = channel_to(mesh.vnapi_address)
    async with channel:
        request_id = await submit(api, simple_request(groups=1, tasks=1))

        async def holding() -> bool:
            return len(recorded_pids(pids)) == 2
        await wait_until(holding, timeout=30)
        await cancel(api, request_id)
        gone_after = wait_gone(recorded_pids(pids), within_s=1.0)
        status = await wait_for_end(api, request_id, timeout=10)

        async def nothing_pending() -> bool:
            return await pending_dispatch(redis_client) == 0
        await wait_until(nothing_pending, timeout=10)
    assert status.status == CANCELLED and gone_after < 1.0
    assert not await redis_client.exists(keys.task_result_key(request_id, 0, "1"))  # its result was abandoned


async def test_cancel_racing_completion_ends_every_request_exactly_once_and_agrees_with_its_answer(
        fault_mesh: FaultMeshFactory, redis_client: redis.Redis, tmp_path: Path) -> None:
    mesh = fault_mesh(workers=2, VNAS_EXECUTOR="python:bench.noop:price", VNAS_SCRIPT="")
    chooser = random.Random(11)
    channel, api = channel_to(mesh.vnapi_address)
    async with channel:
        answers: dict[str, str] = {}
        for _ in range(20):
            request_id = await submit(api, simple_request(groups=2, tasks=2))
            await asyncio.sleep(chooser.uniform(0.0, 0.05))
            try:
                await cancel(api, request_id)
                answers[request_id] = "cancelled"
            except grpc.aio.AioRpcError as exc:
                assert exc.code() == grpc.StatusCode.FAILED_PRECONDITION, exc
                assert decode_error(exc).metadata["status"] == "succeeded"
                answers[request_id] = "succeeded"
        for request_id, expected in answers.items():
            status = await wait_for_end(api, request_id, timeout=20)
            assert valuation_pb2.RequestStatus.Name(status.status).removeprefix("REQUEST_STATUS_").lower() == expected
            await assert_one_terminal_event(redis_client, request_id, expected)
    assert "cancelled" in answers.values()  # the race was run, not avoided


async def test_a_request_cancelled_while_its_orchestrator_was_dead_is_finished_not_resumed_by_the_next(
        fault_mesh: FaultMeshFactory, redis_client: redis.Redis, tmp_path: Path) -> None:
    log, pids = tmp_path / "executions.log", tmp_path / "pids"
    mesh = fault_mesh(workers=1, VNAS_SCRIPT=str(holding_script(tmp_path, log, pids, hold_s=3)),
                      VNAS_CONCURRENCY="2", **FAST_TAKEOVER)
    channel, api = channel_to(mesh.vnapi_address)
    async with channel:
        request_id = await submit(api, simple_request(groups=2, tasks=4))

        async def running() -> bool:
            return len(recorded_pids(pids)) >= 4
        await wait_until(running, timeout=30)
        mesh.kill("vnvs", signal.SIGKILL)
        await cancel(api, request_id)
        wait_gone(recorded_pids(pids), within_s=1.0)  # the workers stop its tasks without any vnvs
        ran_before = executions(log, request_id)
        mesh.start("vnvs2", "vnvs", free_port())

        async def retired() -> bool:
            return (not await redis_client.exists(keys.lease_key(request_id))
                    and await redis_client.zscore(keys.ACTIVE_REQUESTS, request_id) is None)
        await wait_until(retired, timeout=20)
        await asyncio.sleep(1.0)
        status = await wait_for_end(api, request_id, timeout=5)
    assert status.status == CANCELLED
    assert executions(log, request_id) == ran_before  # nothing resumed
    assert await redis_client.ttl(keys.group_state_key(request_id, 0)) > 0
    await assert_one_terminal_event(redis_client, request_id, "cancelled")


async def test_a_sync_submitter_waiting_on_a_cancelled_request_is_answered_at_once(
        fault_mesh: FaultMeshFactory, redis_client: redis.Redis, tmp_path: Path) -> None:
    log, pids = tmp_path / "executions.log", tmp_path / "pids"
    mesh = fault_mesh(workers=1, VNAS_SCRIPT=str(holding_script(tmp_path, log, pids, hold_s=30)),
                      VNAS_TASK_TIMEOUT_MS="60000")
    channel, api = channel_to(mesh.vnapi_address)
    async with channel:
        async def sync_submit() -> valuation_pb2.SubmitResponse:
            reply: valuation_pb2.SubmitResponse = await api.Submit(
                valuation_pb2.SubmitRequest(xml=simple_request(groups=1, tasks=1), sync=True), timeout=60)
            return reply

        waiting = asyncio.create_task(sync_submit())

        async def holding() -> bool:
            return len(log_lines(log)) == 1
        await wait_until(holding, timeout=30)
        request_id = log_lines(log)[0][0]
        await cancel(api, request_id)
        cancelled_at = time.monotonic()
        answer = await asyncio.wait_for(waiting, timeout=5)
        answered_after = time.monotonic() - cancelled_at
    assert answer.status == CANCELLED and not answer.timed_out
    assert reason_of(answer.failure_detail) == "REQUEST_CANCELLED"
    assert answered_after < 2.0


async def test_cancel_answers_for_unknown_malformed_finished_and_twice_cancelled_requests(
        fault_mesh: FaultMeshFactory, redis_client: redis.Redis, tmp_path: Path) -> None:
    log, pids = tmp_path / "executions.log", tmp_path / "pids"
    mesh = fault_mesh(workers=1, VNAS_SCRIPT=str(holding_script(tmp_path, log, pids, hold_s=0.2)))
    channel, api = channel_to(mesh.vnapi_address)
    async with channel:
        unknown = await cancel_error(api, "0123456789abcdef0123456789abcdef")
        assert unknown.code() == grpc.StatusCode.NOT_FOUND
        malformed = await cancel_error(api, "not an id!")
        assert malformed.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert decode_error(malformed).metadata["field"] == "request_id"
        empty = await cancel_error(api, "")
        assert empty.code() == grpc.StatusCode.INVALID_ARGUMENT

        finished_id = await submit(api, simple_request(groups=1, tasks=1))
        assert (await wait_for_end(api, finished_id)).status == Status.REQUEST_STATUS_SUCCEEDED
        finished = await cancel_error(api, finished_id)
        assert finished.code() == grpc.StatusCode.FAILED_PRECONDITION
        error = decode_error(finished)
        assert (error.reason, error.metadata["status"]) == ("REQUEST_FINISHED", "succeeded")
        assert "succeeded" in error.message

        twice_id = await submit(api, simple_request(groups=1, tasks=3))
        first, second = await cancel(api, twice_id), await cancel(api, twice_id)
        assert first.previous_status in (Status.REQUEST_STATUS_RECEIVED, Status.REQUEST_STATUS_STARTED)
        assert (second.previous_status, second.status) == (CANCELLED, CANCELLED)
        status = await wait_for_end(api, twice_id)
    assert status.status == CANCELLED
    await assert_one_terminal_event(redis_client, twice_id, "cancelled")
    await assert_one_terminal_event(redis_client, finished_id, "succeeded")
