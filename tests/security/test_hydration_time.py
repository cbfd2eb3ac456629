"""Hydration time: a runaway expression costs its request HYDRATION_MAX_SECONDS of CPU in a worker process,
never the service's event loop; it fails once and is never resumed; health tells a stalled loop."""

from __future__ import annotations

import asyncio
import functools
import signal
import threading
import time
import urllib.request
from pathlib import Path

import grpc
import pytest
import redis.asyncio as redis
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.conftest import RedisServer, wait_until
from tests.e2e.helpers import simple_request, write_script
from tests.faults.support import TERMINAL, assert_one_terminal_event, channel_to, submit, wait_for_end
from tests.security.hydration_support import (
    NORMAL_LATENCY_S,
    WorkerCpu,
    assert_still_serves,
    failure,
    hydration_workers,
    normal_request_latency,
    one_valuation,
    portfolio,
    project,
    running_mesh,
    vnvs_pid,
)
from tests.security.memory import MIB, peak_rss
from vn.v1 import valuation_pb2
from vncommon import keys
from vncommon.config import CommonSettings
from vncommon.localmesh import free_port
from vncommon.service import serve
from vnvs.hydration import HydrationSettings
from vnvs.server import VnvsService
from vnvs.settings import VnvsSettings

pytestmark = pytest.mark.timeout(120)
BUDGET_S = 3
# Each inner count(//*) walks every node, for every node, for every node: about n^3 steps.
NESTED_COUNT = project(one_valuation('<x select="//*[count(//*[count(//*) > 0]) = 1]"/>'), portfolio(3000))
VNVS_PEAK_RSS = 200 * MIB


async def test_a_runaway_xpath_fails_at_the_time_budget_while_other_requests_keep_their_latency(
        redis_server: RedisServer, redis_client: redis.Redis, tmp_path: Path) -> None:
    with running_mesh(redis_server, tmp_path, HYDRATION_MAX_SECONDS=str(BUDGET_S), HYDRATION_PROCESSES="2",
                      VNVS_LEASE_MS="1000", VNVS_RECOVERY_INTERVAL_MS="200") as mesh:
        pid = vnvs_pid(mesh)
        cpu = WorkerCpu(pid)
        stop = asyncio.Event()
        sampler = asyncio.create_task(cpu.run(stop))
        channel, api = channel_to(mesh.vnapi_address)
        async with channel:
            started = time.monotonic()
            request_id = await submit(api, NESTED_COUNT)

            async def burning() -> bool:
                return cpu.busiest() > 0.5

            await wait_until(burning, timeout=10)
            latencies = []
            query = valuation_pb2.GetStatusRequest(request_id=request_id)
            while (await api.GetStatus(query, timeout=5)).status not in TERMINAL:
                latencies.append(await normal_request_latency(api))
            status = await wait_for_end(api, request_id, timeout=30)
            elapsed = time.monotonic() - started
            stop.set()
            await sampler

            detail = failure(status)
            print(f"measured: runaway XPath stopped after {cpu.busiest():.2f} s CPU, answered in {elapsed:.2f} s; "
                  f"{len(latencies)} normal requests meanwhile, slowest {max(latencies, default=0):.3f} s; "
                  f"vnvs peak RSS {peak_rss(pid) // MIB} MiB")
            assert (detail["reason"], detail["limit"]) == ("HYDRATION_LIMIT", "HYDRATION_MAX_SECONDS"), detail
            # The kernel stops the worker at the request's CPU seconds (to the second, plus its start-up);
            # on a loaded machine that takes longer in wall-clock time, up to the backstop of 3 x + 5 s.
            assert BUDGET_S - 0.5 < cpu.busiest() < BUDGET_S + 2, cpu.seen
            assert elapsed < BUDGET_S * 3 + 5 + NORMAL_LATENCY_S, elapsed
            assert len(latencies) >= 2 and max(latencies) < NORMAL_LATENCY_S, latencies
            assert peak_rss(pid) < VNVS_PEAK_RSS, peak_rss(pid) // MIB

            # Never again: three lease periods and many orphan scans later, nothing hydrates it.
            spent = cpu.sample()
            await asyncio.sleep(3)
            assert cpu.sample() - spent < 0.5, cpu.seen
            assert (await redis_client.hget(keys.request_state_key(request_id), "runStarts")) == b"1"
            await assert_one_terminal_event(redis_client, request_id, "failed")
            assert "took over orphaned request" not in mesh.log_tail(200)
            await assert_still_serves(api)


async def test_a_request_whose_runs_keep_being_lost_is_failed_instead_of_resumed(
        redis_server: RedisServer, redis_client: redis.Redis, tmp_path: Path) -> None:
    script = write_script(tmp_path, "slow.sh", "sleep 60\n")
    with running_mesh(redis_server, tmp_path / "logs", VNAS_SCRIPT=str(script), VNVS_MAX_RUN_STARTS="2",
                      VNVS_LEASE_MS="1000", VNVS_RECOVERY_INTERVAL_MS="200") as mesh:
        channel, api = channel_to(mesh.vnapi_address)
        async with channel:
            request_id = await submit(api, simple_request(groups=1, tasks=1))
            state = keys.request_state_key(request_id)

            async def starts_are(count: int) -> bool:
                return await redis_client.hget(state, "runStarts") == str(count).encode()

            current = "vnvs"
            for serial in (1, 2):  # each orchestrator dies (SIGKILL) while its run is in the group
                await wait_until(functools.partial(starts_are, serial), timeout=20)
                await wait_until(functools.partial(_dispatched, redis_client, request_id), timeout=20)
                workers = hydration_workers(mesh.processes[current].pid)
                mesh.kill(current, signal.SIGKILL)
                current = f"vnvs~{serial}"
                mesh.start(current, "vnvs", mesh.vnvs_port)
                for worker in workers:  # orphaned workers see their stdin close and leave
                    worker.wait(timeout=10)
            status = await wait_for_end(api, request_id, timeout=30)
            detail = failure(status)
            assert detail["reason"] == "RUN_ATTEMPTS_EXHAUSTED", detail
            assert "started 3 times without finishing a group" in detail["message"]
            assert await starts_are(3)
            await assert_one_terminal_event(redis_client, request_id, "failed")


async def _dispatched(client: redis.Redis, request_id: str) -> bool:
    return bool(await client.hlen(keys.group_tasks_key(request_id, 0)))


async def _health(port: int) -> int:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2)
        return int(reply.status)


async def test_health_is_not_serving_while_the_event_loop_is_stalled_and_the_lag_is_a_metric(
        redis_server: RedisServer, redis_client: redis.Redis) -> None:
    metrics_port = free_port()
    settings = VnvsSettings(common=CommonSettings(redis_url=redis_server.url, metrics_port=metrics_port),
                            hydration=HydrationSettings(processes=1), grpc_port=free_port(), loop_stall_ms=300)
    service = VnvsService(settings)
    stop, started = asyncio.Event(), asyncio.Event()
    serving = asyncio.create_task(serve(service, stop, started))
    try:
        await asyncio.wait_for(started.wait(), 30)
        serving_now = health_pb2.HealthCheckResponse.SERVING
        await wait_until(lambda: _is(settings.grpc_port, serving_now), timeout=5)
        scraped: list[float] = []
        scrape = threading.Thread(target=lambda: scraped.append(_lag_metric(metrics_port, after_s=0.6)))
        scrape.start()
        _spin(1.0)  # a CPU-bound call on the loop: this test shares its loop with the service
        await wait_until(lambda: _is(settings.grpc_port, health_pb2.HealthCheckResponse.NOT_SERVING), timeout=1)
        scrape.join(5)
        assert scraped and scraped[0] >= 0.4, scraped  # read from the metrics thread during the stall
        await wait_until(lambda: _is(settings.grpc_port, serving_now), timeout=5)  # on time again
    finally:
        stop.set()
        await asyncio.wait_for(serving, 30)


def _spin(seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        pass


async def _is(port: int, status: int) -> bool:
    return await _health(port) == status


def _lag_metric(port: int, after_s: float) -> float:
    time.sleep(after_s)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        for line in reply.read().decode().splitlines():
            if line.startswith("vnvs_event_loop_lag_seconds "):
                return float(line.split()[1])
    return -1.0
