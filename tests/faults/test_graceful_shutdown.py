"""SIGTERM to a service that holds work: it exits 0 within a bounded time and the work is not lost."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from pathlib import Path

import aiohttp
import pytest
import redis.asyncio as redis

from tests.conftest import wait_until
from tests.e2e.helpers import Status, amounts, simple_request
from tests.faults.conftest import FaultMeshFactory
from tests.faults.support import (
    assert_one_terminal_event,
    channel_to,
    counting_script,
    event_statuses,
    executions,
    log_lines,
    results,
    submit,
    wait_for_end,
)
from vncommon import keys
from vncommon.localmesh import LocalMesh

pytestmark = pytest.mark.timeout(90)

EXIT_BOUND_S = 15.0


def terminate(mesh: LocalMesh, name: str) -> tuple[int, float]:
    """SIGTERM one process; its exit code and how long it took to exit (fails past EXIT_BOUND_S)."""
    process = mesh.processes.pop(name)
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    try:
        code = process.wait(timeout=EXIT_BOUND_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise AssertionError(f"{name} did not exit within {EXIT_BOUND_S}s of SIGTERM\n{mesh.log_tail()}") from None
    return code, time.monotonic() - started


async def test_a_worker_stopped_mid_task_exits_zero_and_another_worker_finishes_the_task(
        fault_mesh: FaultMeshFactory, redis_client: redis.Redis, tmp_path: Path) -> None:
    log = tmp_path / "executions.log"
    script = counting_script(tmp_path, log, sleep_s=3.0)
    # A grace shorter than the task: the worker gives the task up and hands its entry back.
    mesh = fault_mesh(workers=1, VNAS_SCRIPT=str(script), VNAS_SHUTDOWN_GRACE_MS="500")
    worker_pid = mesh.processes["vnas0"].pid
    channel, api = channel_to(mesh.vnapi_address)
    async with channel:
        request_id = await submit(api, simple_request(groups=1, tasks=2))

        async def both_tasks_run() -> bool:
            return len(log_lines(log)) == 2

        await wait_until(both_tasks_run, timeout=20)
        code, took = terminate(mesh, "vnas0")
        assert code == 0 and took < EXIT_BOUND_S, (code, took)
        handed_back = await redis_client.xpending_range(keys.DISPATCH_STREAM, keys.DISPATCH_GROUP, "-", "+", 10)
        assert len(handed_back) == 2 and all(row["time_since_delivered"] >= 1000 for row in handed_back), handed_back

        mesh.start("vnas-replacement", "vnas", mesh.fresh_ports(1)[0])
        status = await wait_for_end(api, request_id, timeout=30)
        assert status.status == Status.REQUEST_STATUS_SUCCEEDED, status.failure_detail + mesh.log_tail()
        assert len(amounts(await results(api, request_id), 0)) == 2
    replacement_pid = mesh.processes["vnas-replacement"].pid
    assert [int(line[5]) for line in log_lines(log)].count(replacement_pid) == 2
    assert executions(log, request_id) == {("0", "1"): 2, ("0", "2"): 2}
    assert worker_pid != replacement_pid
    await assert_one_terminal_event(redis_client, request_id, "succeeded")


async def test_a_worker_stopped_with_time_to_spare_finishes_its_task_before_exiting_zero(
        fault_mesh: FaultMeshFactory, redis_client: redis.Redis, tmp_path: Path) -> None:
    log = tmp_path / "executions.log"
    script = counting_script(tmp_path, log, sleep_s=1.5)
    mesh = fault_mesh(workers=1, VNAS_SCRIPT=str(script))
    channel, api = channel_to(mesh.vnapi_address)
    async with channel:
        request_id = await submit(api, simple_request(groups=1, tasks=1))

        async def task_runs() -> bool:
            return len(log_lines(log)) == 1

        await wait_until(task_runs, timeout=20)
        code, took = terminate(mesh, "vnas0")
        assert code == 0 and 0.5 < took < EXIT_BOUND_S, (code, took)
        # The worker settled the task before exiting: nothing is pending, the request ends without it.
        assert await redis_client.xpending(keys.DISPATCH_STREAM, keys.DISPATCH_GROUP) == {
            "pending": 0, "min": None, "max": None, "consumers": []}
        status = await wait_for_end(api, request_id, timeout=20)
        assert status.status == Status.REQUEST_STATUS_SUCCEEDED, status.failure_detail + mesh.log_tail()
    assert executions(log, request_id) == {("0", "1"): 1}
    await assert_one_terminal_event(redis_client, request_id, "succeeded")


async def test_an_orchestrator_stopped_mid_request_exits_zero_and_another_instance_finishes_the_request(
        fault_mesh: FaultMeshFactory, redis_client: redis.Redis, tmp_path: Path) -> None:
    log = tmp_path / "executions.log"
    script = counting_script(tmp_path, log, sleep_s=0.8)
    mesh = fault_mesh(workers=2, VNAS_SCRIPT=str(script), VNVS_LEASE_MS="1000", VNVS_RECOVERY_INTERVAL_MS="200",
                      VNVS_SHUTDOWN_GRACE_MS="500")
    mesh.start("vnvs2", "vnvs", mesh.fresh_ports(1)[0])
    channel, api = channel_to(mesh.vnapi_address)
    async with channel:
        request_id = await submit(api, simple_request(groups=3, tasks=2))

        async def first_group_runs() -> bool:
            return bool(executions(log, request_id))

        await wait_until(first_group_runs, timeout=20)
        code, took = terminate(mesh, "vnvs")
        assert code == 0 and took < EXIT_BOUND_S, (code, took)
        status = await wait_for_end(api, request_id, timeout=40)
        assert status.status == Status.REQUEST_STATUS_SUCCEEDED, status.failure_detail + mesh.log_tail()
        assert [len(amounts(await results(api, request_id), g)) for g in range(3)] == [2, 2, 2]
    assert sorted(executions(log, request_id).values()) == [1] * 6
    await assert_one_terminal_event(redis_client, request_id, "succeeded")
    assert (await event_statuses(redis_client, request_id)).count("group_completed") == 3


async def test_a_vnapi_stopped_while_handing_a_request_over_exits_zero_and_another_vnapi_hands_it_over(
        fault_mesh: FaultMeshFactory, redis_client: redis.Redis) -> None:
    mesh = fault_mesh(workers=1, VNAPI_INGEST_CLAIM_IDLE_MS="500", VNAPI_SHUTDOWN_GRACE_MS="1000")
    vnvs = mesh.processes["vnvs"]
    vnvs.send_signal(signal.SIGSTOP)  # Orchestrate hangs: the ingest entry stays in vnapi's hands
    try:
        channel, api = channel_to(mesh.vnapi_address)
        async with channel:
            request_id = await submit(api, simple_request(groups=1, tasks=2))

        async def held_by_vnapi() -> bool:
            rows = await redis_client.xpending_range(keys.INGEST_STREAM, keys.INGEST_GROUP, "-", "+", 10)
            return [row["consumer"] for row in rows] == [b"vnapi"]

        await wait_until(held_by_vnapi, timeout=10)
        code, took = terminate(mesh, "vnapi")
        # The hanging Orchestrate call gets the shutdown grace (1 s), not its whole timeout (10 s).
        assert code == 0 and took < 5, (code, took)
    finally:
        vnvs.send_signal(signal.SIGCONT)
    survivor_port = mesh.fresh_ports(1)[0]
    mesh.start("vnapi2", "vnapi", survivor_port, VNAPI_CONSUMER_NAME="vnapi2", VNAPI_INGEST_CLAIM_IDLE_MS="500")
    channel, survivor = channel_to(f"127.0.0.1:{survivor_port}")
    async with channel:
        status = await wait_for_end(survivor, request_id, timeout=30)
        assert status.status == Status.REQUEST_STATUS_SUCCEEDED, status.failure_detail + mesh.log_tail()
    await assert_one_terminal_event(redis_client, request_id, "succeeded")


async def test_a_gateway_stopped_during_a_sync_request_answers_it_then_exits_zero(
        fault_mesh: FaultMeshFactory, redis_client: redis.Redis, tmp_path: Path) -> None:
    log = tmp_path / "executions.log"
    script = counting_script(tmp_path, log, sleep_s=1.5)
    mesh = fault_mesh(workers=1, VNAS_SCRIPT=str(script))
    mesh.start("gateway", "gateway", mesh.http_port)
    async with aiohttp.ClientSession() as http:
        post = asyncio.create_task(http.post(f"{mesh.http}/valuation?sync=Y", data=simple_request(groups=1, tasks=1),
                                             headers={"Content-Type": "application/xml"}))

        async def task_runs() -> bool:
            return len(log_lines(log)) == 1

        await wait_until(task_runs, timeout=20)
        code, took = await asyncio.to_thread(terminate, mesh, "gateway")
        response = await post
        assert response.status == 200, await response.text()
        body = await response.read()
    assert code == 0 and took < EXIT_BOUND_S, (code, took)
    assert len(amounts(body, 0)) == 1 and float(amounts(body, 0)[0]) > 0
    request_id = log_lines(log)[0][0]
    await assert_one_terminal_event(redis_client, request_id, "succeeded")
