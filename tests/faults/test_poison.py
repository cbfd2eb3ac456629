"""A poison task (it kills every worker that runs it) ends after MAX_TASK_RETRIES deliveries in all."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import redis.asyncio as redis

from tests.e2e.conftest import EXAMPLES
from tests.e2e.helpers import Status, simple_request, write_script
from tests.faults.conftest import FaultMeshFactory
from tests.faults.support import Chaos, assert_one_terminal_event, channel_to, executions, submit, wait_for_end
from vncommon import keys

pytestmark = pytest.mark.timeout(90)


async def test_a_task_that_kills_its_worker_is_dead_lettered_after_three_deliveries_and_fails_the_request(
        fault_mesh: FaultMeshFactory, redis_client: redis.Redis, tmp_path: Path) -> None:
    log = tmp_path / "executions.log"
    script = write_script(tmp_path, "poison.sh", (
        f'echo "$VN_REQUEST_ID $VN_GROUP_INDEX $VN_TASK_ID $VN_ATTEMPT $$ $PPID" >> "{log}"\n'
        'if [ "$VN_GROUP_INDEX/$VN_TASK_ID" = "0/2" ]; then kill -9 "$PPID"; exit 1; fi\n'
        f'exec "{EXAMPLES / "price.py"}" "$1"\n'))
    # One task per worker at a time, so the poison takes down nobody else's task.
    mesh = fault_mesh(workers=2, VNAS_SCRIPT=str(script), VNAS_CLAIM_IDLE_MS="1000", VNAS_CONCURRENCY="1",
                      MAX_TASK_RETRIES="3")
    channel, api = channel_to(mesh.vnapi_address)
    with Chaos(mesh, "vnas", ["vnas0", "vnas1"]) as respawner:  # replaces the workers the poison kills
        async with channel:
            request_id = await submit(api, simple_request(groups=2, tasks=3))
            status = await wait_for_end(api, request_id, timeout=60)
    assert status.status == Status.REQUEST_STATUS_FAILED, mesh.log_tail()
    detail = json.loads(status.failure_detail)
    assert detail["reason"] == "TASK_RETRIES_EXHAUSTED"
    assert (detail["taskId"], detail["groupIndex"], detail["group"]) == ("2", "0", "g1")
    assert "task 2 of group 0 (g1)" in detail["message"] and "poison task" in detail["error"]
    assert detail["deliveries"] == "3"

    runs = executions(log, request_id)
    assert runs[("0", "2")] == 3, runs  # MAX_TASK_RETRIES deliveries in all, then never again
    assert runs[("0", "1")] == 1 and runs[("0", "3")] == 1, runs
    assert ("1", "1") not in runs  # the next group never started
    assert respawner.respawns == 3

    [(_entry_id, record)] = await redis_client.xrange(keys.DEADLETTER_STREAM)
    fields = {k.decode(): v.decode() for k, v in record.items()}
    assert fields["requestId"] == request_id and fields["taskId"] == "2" and fields["groupIndex"] == "0"
    # The record carries the task's document: inline in the entry when small (as here), else by its key.
    assert (fields["payloadKey"], "<vnml" in fields["payload"]) == ("", True)
    assert fields["resultKey"] == keys.task_result_key(request_id, 0, "2")
    assert fields["deliveries"] == "3" and fields["entryId"] and fields["consumer"] and fields["deadLetteredAt"]
    assert fields["error"].startswith("poison task") and fields["valuationName"] and fields["traceId"]
    assert await redis_client.xpending(keys.DISPATCH_STREAM, keys.DISPATCH_GROUP) == {
        "pending": 0, "min": None, "max": None, "consumers": []}
    await assert_one_terminal_event(redis_client, request_id, "failed")
