"""A vnas worker killed with SIGKILL in the middle of a task: its entry is reclaimed by a live worker."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import redis.asyncio as redis

from tests.conftest import wait_until
from tests.e2e.helpers import Status, amounts, simple_request
from tests.faults.conftest import FaultMeshFactory
from tests.faults.support import (
    assert_one_terminal_event,
    channel_to,
    counting_script,
    executions,
    log_lines,
    results,
    submit,
    wait_for_end,
)

pytestmark = pytest.mark.timeout(90)


async def test_a_worker_killed_mid_task_leaves_the_request_succeeding_with_each_task_run_at_most_twice(
        fault_mesh: FaultMeshFactory, redis_client: redis.Redis, tmp_path: Path) -> None:
    log = tmp_path / "executions.log"
    script = counting_script(tmp_path, log, sleep_s=1.0)
    mesh = fault_mesh(workers=2, VNAS_SCRIPT=str(script), VNAS_CLAIM_IDLE_MS="1500", PRICE_OUTPUT="number",
                      VNAS_SCRIPT_ENV="PRICE_OUTPUT")
    workers = {process.pid: name for name, process in mesh.processes.items() if name.startswith("vnas")}
    channel, api = channel_to(mesh.vnapi_address)
    async with channel:
        request_id = await submit(api, simple_request(groups=2, tasks=3))

        async def a_task_runs() -> bool:
            return bool(log_lines(log))

        await wait_until(a_task_runs, timeout=20)
        victim_pid = int(log_lines(log)[0][5])  # the script's parent: the worker running it
        assert victim_pid in workers, (victim_pid, workers)
        mesh.kill(workers[victim_pid], signal.SIGKILL)
        killed_tasks = {(g, t) for _, g, t, _, _, ppid in log_lines(log) if int(ppid) == victim_pid}

        status = await wait_for_end(api, request_id, timeout=60)
        assert status.status == Status.REQUEST_STATUS_SUCCEEDED, status.failure_detail + mesh.log_tail()
        response = await results(api, request_id)

    runs = executions(log, request_id)
    assert set(runs) == {(g, t) for g in ("0", "1") for t in ("1", "2", "3")}
    assert max(runs.values()) <= 2, runs
    # The killed worker's tasks ran again elsewhere: each of them was reclaimed, not lost.
    assert all(runs[task] == 2 for task in killed_tasks), (runs, killed_tasks)
    for task in killed_tasks:
        parents = [int(ppid) for rid, g, t, _, _, ppid in log_lines(log) if rid == request_id and (g, t) == task]
        assert parents[0] == victim_pid and parents[1] != victim_pid, (task, parents)
    assert all(float(a) > 0 for a in amounts(response, 0) + amounts(response, 1))
    assert not _alive(victim_pid) and len(killed_tasks) >= 1
    await assert_one_terminal_event(redis_client, request_id, "succeeded")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
