"""The vnvs instance driving a request is killed with SIGKILL mid-group: another instance resumes it."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
import redis.asyncio as redis

from tests.conftest import wait_until
from tests.e2e.helpers import Status, simple_request
from tests.faults.conftest import FaultMeshFactory
from tests.faults.support import (
    assert_one_terminal_event,
    channel_to,
    counting_script,
    event_statuses,
    executions,
    project_bytes,
    results,
    submit,
    wait_for_end,
)
from vncommon import keys

pytestmark = pytest.mark.timeout(90)

FAST_TAKEOVER = {"VNVS_LEASE_MS": "1000", "VNVS_RECOVERY_INTERVAL_MS": "200"}


async def test_a_request_whose_orchestrator_dies_mid_group_is_finished_by_another_without_rerunning_work(
        fault_mesh: FaultMeshFactory, redis_client: redis.Redis, tmp_path: Path) -> None:
    log = tmp_path / "executions.log"
    script = counting_script(tmp_path, log, sleep_s=0.6)
    mesh = fault_mesh(workers=2, VNAS_SCRIPT=str(script), **FAST_TAKEOVER)
    mesh.start("vnvs2", "vnvs", mesh.fresh_ports(1)[0])
    body = simple_request(groups=3, tasks=3)
    channel, api = channel_to(mesh.vnapi_address)
    async with channel:
        # An undisturbed run of the same body first: the reference response.
        reference_id = await submit(api, body)
        reference = await wait_for_end(api, reference_id, timeout=60)
        assert reference.status == Status.REQUEST_STATUS_SUCCEEDED, reference.failure_detail
        reference_xml = await results(api, reference_id)

        request_id = await submit(api, body)

        async def second_group_is_running() -> bool:
            return ("group_completed" in await event_statuses(redis_client, request_id)
                    and any(g == "1" for g, _ in executions(log, request_id)))

        await wait_until(second_group_is_running, timeout=30)
        lease_holder = await redis_client.get(keys.lease_key(request_id))
        driver_pid = mesh.processes["vnvs"].pid
        mesh.kill("vnvs", signal.SIGKILL)
        finished_before_kill = {task for task, _ in executions(log, request_id).items() if task[0] == "0"}

        status = await wait_for_end(api, request_id, timeout=45)
        assert status.status == Status.REQUEST_STATUS_SUCCEEDED, status.failure_detail + mesh.log_tail()
        response = await results(api, request_id)

    assert lease_holder is not None and lease_holder.decode().endswith(f"-{driver_pid}")  # the killed one drove it
    runs = executions(log, request_id)
    assert finished_before_kill == {("0", "1"), ("0", "2"), ("0", "3")}
    assert all(runs[task] == 1 for task in finished_before_kill), runs
    # Tasks in flight at the kill were left to their dispatch entries, not sent again.
    assert sorted(runs.values()) == [1] * 9, runs
    assert project_bytes(response) == project_bytes(reference_xml)
    assert response.replace(request_id.encode(), reference_id.encode()) == reference_xml
    await assert_one_terminal_event(redis_client, request_id, "succeeded")
    statuses = await event_statuses(redis_client, request_id)
    assert statuses.count("started") == 1 and statuses.count("group_started") == 3, statuses
