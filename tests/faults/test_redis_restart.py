"""Redis restarts (AOF on) while requests run: every request ends, and no service process exits."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import redis.asyncio as redis

from tests.conftest import RedisServer, wait_until
from tests.e2e.helpers import Status, amounts, simple_request
from tests.faults.conftest import FaultMeshFactory
from tests.faults.support import (
    assert_one_terminal_event,
    channel_to,
    counting_script,
    log_lines,
    results,
    submit,
    wait_for_end,
)

pytestmark = pytest.mark.timeout(120)


async def test_requests_in_flight_across_a_redis_restart_all_succeed_and_every_service_keeps_serving(
        aof_redis: RedisServer, fault_mesh: FaultMeshFactory, tmp_path: Path) -> None:
    log = tmp_path / "executions.log"
    script = counting_script(tmp_path, log, sleep_s=0.5)
    mesh = fault_mesh(workers=2, redis_url=aof_redis.url, VNAS_SCRIPT=str(script),
                      VNVS_LEASE_MS="2000", VNVS_RECOVERY_INTERVAL_MS="200")
    bodies = [simple_request(groups=2, tasks=i + 2) for i in range(4)]
    channel, api = channel_to(mesh.vnapi_address)
    async with channel:
        ids = [await submit(api, body) for body in bodies]

        async def tasks_are_running() -> bool:
            return len(log_lines(log)) >= 2

        await wait_until(tasks_are_running, timeout=20)
        aof_redis.stop()
        await asyncio.sleep(1.5)
        aof_redis.start(appendonly=True)

        statuses = [await wait_for_end(api, request_id, timeout=60) for request_id in ids]
        for status in statuses:
            assert status.status == Status.REQUEST_STATUS_SUCCEEDED, status.failure_detail + mesh.log_tail()
        for index, request_id in enumerate(ids):
            assert len(amounts(await results(api, request_id), 0)) == index + 2

        exited = {name: p.returncode for name, p in mesh.processes.items() if p.poll() is not None}
        assert exited == {}, mesh.log_tail()
        # Every process still serves: a new request runs through vnapi, vnvs and the workers.
        fresh = await submit(api, simple_request(groups=1, tasks=8))
        status = await wait_for_end(api, fresh, timeout=30)
        assert status.status == Status.REQUEST_STATUS_SUCCEEDED, status.failure_detail + mesh.log_tail()
        workers = {p.pid for name, p in mesh.processes.items() if name.startswith("vnas")}
        assert {int(line[5]) for line in log_lines(log) if line[0] == fresh} == workers

    client = redis.Redis.from_url(aof_redis.url)
    try:
        for request_id in [*ids, fresh]:
            await assert_one_terminal_event(client, request_id, "succeeded")
    finally:
        await client.aclose()
    assert {p.poll() for p in mesh.processes.values()} == {None}
