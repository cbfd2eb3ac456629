"""Twenty concurrent requests while a chaos loop SIGKILLs a random vnas worker every few hundred ms."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import redis.asyncio as redis

from tests.e2e.helpers import Status, amounts, response_groups, simple_request
from tests.faults.conftest import FaultMeshFactory
from tests.faults.support import (
    Chaos,
    assert_one_terminal_event,
    channel_to,
    counting_script,
    executions,
    results,
    submit,
    wait_for_end,
)
from vncommon import keys

pytestmark = pytest.mark.timeout(120)


def _figures(xml: bytes) -> list[list[str]]:
    return [amounts(xml, g) for g in range(len(response_groups(xml)))]


async def test_twenty_concurrent_requests_succeed_with_undisturbed_results_while_workers_are_killed_at_random(
        fault_mesh: FaultMeshFactory, redis_client: redis.Redis, tmp_path: Path) -> None:
    log = tmp_path / "executions.log"
    script = counting_script(tmp_path, log, sleep_s=0.2)
    # Every lost delivery counts against a task's budget (SPEC section 9), and at this kill rate a task
    # can be on a killed worker three times in a row: the budget is raised so that only lost or wrong
    # results, not the budget, can fail this test (tests/faults/test_poison.py covers the budget).
    mesh = fault_mesh(workers=3, VNAS_SCRIPT=str(script), VNAS_CLAIM_IDLE_MS="1000", MAX_TASK_RETRIES="10")
    bodies = [simple_request(groups=2, tasks=i % 4 + 1) for i in range(20)]
    channel, api = channel_to(mesh.vnapi_address)
    async with channel:
        reference_ids = await asyncio.gather(*(submit(api, body) for body in bodies))
        for request_id in reference_ids:
            status = await wait_for_end(api, request_id, timeout=40)
            assert status.status == Status.REQUEST_STATUS_SUCCEEDED, status.failure_detail
        reference = [_figures(await results(api, request_id)) for request_id in reference_ids]

        with Chaos(mesh, "vnas", ["vnas0", "vnas1", "vnas2"], kill_every=(0.3, 0.7)) as chaos:
            ids = await asyncio.gather(*(submit(api, body) for body in bodies))
            statuses = [await wait_for_end(api, request_id, timeout=75) for request_id in ids]
        assert chaos.kills >= 5, chaos.kills
        failed = [s.failure_detail for s in statuses if s.status != Status.REQUEST_STATUS_SUCCEEDED]
        assert failed == [], failed
        figures = [_figures(await results(api, request_id)) for request_id in ids]

    assert figures == reference
    assert await redis_client.xlen(keys.DEADLETTER_STREAM) == 0
    assert max(executions(log).values()) >= 2  # the chaos did hit running tasks
    for request_id in ids:
        await assert_one_terminal_event(redis_client, request_id, "succeeded")
