"""vnapi killed with SIGKILL right after Submit answered: a surviving vnapi hands the request over."""

from __future__ import annotations

import signal

import pytest
import redis.asyncio as redis

from tests.conftest import wait_until
from tests.e2e.helpers import Status, amounts, simple_request
from tests.faults.conftest import FaultMeshFactory
from tests.faults.support import assert_one_terminal_event, channel_to, event_statuses, results, submit, wait_for_end
from vncommon import keys

pytestmark = pytest.mark.timeout(90)

FAST_RECLAIM = {"VNAPI_INGEST_CLAIM_IDLE_MS": "500"}


async def _pending_ingest(client: redis.Redis) -> list[tuple[str, int]]:
    rows = await client.xpending_range(keys.INGEST_STREAM, keys.INGEST_GROUP, "-", "+", 100)
    return [(row["consumer"].decode(), int(row["times_delivered"])) for row in rows]


async def test_a_request_whose_vnapi_dies_before_handing_it_over_is_handed_over_by_the_surviving_vnapi(
        fault_mesh: FaultMeshFactory, redis_client: redis.Redis) -> None:
    mesh = fault_mesh(workers=1, **FAST_RECLAIM)
    vnvs = mesh.processes["vnvs"]
    # With the orchestrator stalled, the ingest entry sits in the first vnapi's pending list: the kill
    # lands after Submit answered and before any vnvs instance took the request.
    vnvs.send_signal(signal.SIGSTOP)
    try:
        channel, api = channel_to(mesh.vnapi_address)
        async with channel:
            request_id = await submit(api, simple_request(groups=2, tasks=2))

        async def held_by_first_vnapi() -> bool:
            return [c for c, _ in await _pending_ingest(redis_client)] == ["vnapi"]

        await wait_until(held_by_first_vnapi, timeout=10)
        survivor_port = mesh.fresh_ports(1)[0]
        mesh.start("vnapi2", "vnapi", survivor_port, VNAPI_CONSUMER_NAME="vnapi2", **FAST_RECLAIM)
        mesh.kill("vnapi", signal.SIGKILL)
    finally:
        vnvs.send_signal(signal.SIGCONT)

    channel, survivor = channel_to(f"127.0.0.1:{survivor_port}")
    async with channel:
        status = await wait_for_end(survivor, request_id, timeout=45)
        assert status.status == Status.REQUEST_STATUS_SUCCEEDED, status.failure_detail + mesh.log_tail()
        response = await results(survivor, request_id)
    assert all(float(a) > 0 for a in amounts(response, 0) + amounts(response, 1))
    assert await _pending_ingest(redis_client) == []  # the survivor reclaimed the entry and acknowledged it
    consumers = {c["name"].decode(): c for c in await redis_client.xinfo_consumers(keys.INGEST_STREAM,
                                                                                    keys.INGEST_GROUP)}
    assert consumers["vnapi"]["pending"] == 0 and "vnapi2" in consumers
    assert (await event_statuses(redis_client, request_id)).count("received") == 1
    await assert_one_terminal_event(redis_client, request_id, "succeeded")


async def test_requests_submitted_to_a_vnapi_killed_right_after_submit_all_complete_via_the_other_vnapi(
        fault_mesh: FaultMeshFactory, redis_client: redis.Redis) -> None:
    mesh = fault_mesh(workers=2, **FAST_RECLAIM)
    survivor_port = mesh.fresh_ports(1)[0]
    mesh.start("vnapi2", "vnapi", survivor_port, VNAPI_CONSUMER_NAME="vnapi2", **FAST_RECLAIM)
    channel, api = channel_to(mesh.vnapi_address)
    async with channel:
        ids = [await submit(api, simple_request(groups=1, tasks=2)) for _ in range(3)]
    mesh.kill("vnapi", signal.SIGKILL)
    channel, survivor = channel_to(f"127.0.0.1:{survivor_port}")
    async with channel:
        for request_id in ids:
            status = await wait_for_end(survivor, request_id, timeout=30)
            assert status.status == Status.REQUEST_STATUS_SUCCEEDED, status.failure_detail + mesh.log_tail()
            await assert_one_terminal_event(redis_client, request_id, "succeeded")

    async def nothing_left_pending() -> bool:  # an entry the dead vnapi never acknowledged is reclaimed too
        return await _pending_ingest(redis_client) == []

    await wait_until(nothing_left_pending, timeout=15)
