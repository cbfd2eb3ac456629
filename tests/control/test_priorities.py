"""Priorities and fairness on a mesh of real processes (docs/architecture.md, "Priorities and fairness").

Each test measures in work, not in seconds: how many tasks of the big request completed while the small
one ran (its updates stream gains one entry per completed task), so a slow machine slows both alike.
"""

from __future__ import annotations

import asyncio

import grpc
import pytest
import redis.asyncio as redis

from tests.e2e.helpers import Status, simple_request
from tests.faults.conftest import FaultMeshFactory, free_port
from tests.faults.support import channel_to, wait_for_end
from vn.v1 import valuation_pb2, valuation_pb2_grpc
from vncommon import keys
from vncommon.localmesh import LocalMesh
from vncommon.state import Priority

pytestmark = pytest.mark.timeout(180)

Api = valuation_pb2_grpc.ValuationServiceStub
SUCCEEDED = Status.REQUEST_STATUS_SUCCEEDED
HIGH, NORMAL, BATCH = valuation_pb2.PRIORITY_HIGH, valuation_pb2.PRIORITY_NORMAL, valuation_pb2.PRIORITY_BATCH
# One worker, 8 slots, tasks of 2 ms on its event loop: a few thousand tasks take seconds, not minutes.
SLOW_TASKS = {"VNAS_SCRIPT": "", "VNAS_EXECUTOR": "python:tests.vnas.pricers:sleep_2ms", "VNAS_CONCURRENCY": "8"}


async def _submit(api: Api, groups: int, tasks: int, priority: int) -> str:
    reply = await api.Submit(valuation_pb2.SubmitRequest(xml=simple_request(groups, tasks), priority=priority),
                             timeout=30)
    return str(reply.request_id)


async def _completed(client: redis.Redis, request_id: str) -> int:
    return int(await client.xlen(keys.updates_stream(request_id)))


async def _running_with(client: redis.Redis, request_id: str, completed: int) -> None:
    """Wait until the request has run `completed` tasks (its stream is full of its work by then)."""
    for _ in range(600):
        if await _completed(client, request_id) >= completed:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"request {request_id} never got {completed} tasks done")


async def _still_running(api: Api, request_id: str) -> bool:
    status = await api.GetStatus(valuation_pb2.GetStatusRequest(request_id=request_id), timeout=5)
    return status.status not in (SUCCEEDED, Status.REQUEST_STATUS_FAILED, Status.REQUEST_STATUS_CANCELLED)


async def _tasks_done_meanwhile(api: Api, client: redis.Redis, big: str, groups: int, tasks: int,
                                priority: int) -> int:
    """Run a small request to its end while `big` runs; how many of big's tasks completed meanwhile."""
    before = await _completed(client, big)
    small = await _submit(api, groups, tasks, priority)
    status = await wait_for_end(api, small, timeout=120)
    assert status.status == SUCCEEDED, status
    meanwhile = await _completed(client, big) - before
    assert await _still_running(api, big), "the big request ended first: nothing was measured"
    return meanwhile


async def _cancel(api: Api, *request_ids: str) -> None:
    """Cancel what a test leaves running, so that the mesh stops at once instead of waiting out its grace."""
    for request_id in request_ids:
        await api.Cancel(valuation_pb2.CancelRequest(request_id=request_id), timeout=10)


def _api(mesh: LocalMesh) -> tuple[grpc.aio.Channel, Api]:
    return channel_to(mesh.vnapi_address)


async def test_a_normal_2x10_request_finishes_in_bounded_work_while_a_5000_task_batch_runs(
        fault_mesh: FaultMeshFactory, redis_client: redis.Redis) -> None:
    mesh = fault_mesh(workers=1, **SLOW_TASKS)
    channel, api = _api(mesh)
    async with channel:
        batch = await _submit(api, 1, 5000, BATCH)
        await _running_with(redis_client, batch, 200)
        meanwhile = await _tasks_done_meanwhile(api, redis_client, batch, 2, 10, NORMAL)
        # Without priorities each group would queue behind the batch's window (512 tasks): over 1,000
        # in all. With them, the batch finishes what the worker already holds, its share of rounds, and
        # what runs while the small request is submitted and hydrated (about 200 in all here).
        assert meanwhile < 600, meanwhile
        assert (await wait_for_end(api, batch, timeout=150)).status == SUCCEEDED


async def test_high_overtakes_normal(fault_mesh: FaultMeshFactory, redis_client: redis.Redis) -> None:
    mesh = fault_mesh(workers=1, **SLOW_TASKS)
    channel, api = _api(mesh)
    async with channel:
        normal = await _submit(api, 1, 3000, NORMAL)
        await _running_with(redis_client, normal, 200)
        meanwhile = await _tasks_done_meanwhile(api, redis_client, normal, 1, 10, HIGH)
        # Without priorities: behind the normal request's window (over 500); with them about 100.
        assert meanwhile < 300, meanwhile
        await _cancel(api, normal)


async def test_within_one_priority_a_small_request_waits_for_at_most_the_big_ones_window(
        fault_mesh: FaultMeshFactory, redis_client: redis.Redis) -> None:
    mesh = fault_mesh(workers=1, VNVS_REQUEST_WINDOW="200", **SLOW_TASKS)
    channel, api = _api(mesh)
    async with channel:
        big = await _submit(api, 1, 5000, NORMAL)
        await _running_with(redis_client, big, 300)
        meanwhile = await _tasks_done_meanwhile(api, redis_client, big, 2, 10, NORMAL)
        # Each of the small request's two groups queues behind at most the big one's window (which counts
        # what the worker holds), plus what runs while it is submitted and hydrated (about 430 in all
        # here); without the window it would wait for the rest of the 5,000 tasks (about 4,600).
        assert meanwhile <= 2 * 200 + 300, meanwhile
        assert (await wait_for_end(api, big, timeout=150)).status == SUCCEEDED


async def _waiting_entries(client: redis.Redis, stream: str) -> int:
    """Entries of the stream not yet read by any worker (the group's lag)."""
    [group] = await client.xinfo_groups(stream)
    return int(group["lag"])


async def test_batch_progresses_under_constant_high_load(
        fault_mesh: FaultMeshFactory, redis_client: redis.Redis) -> None:
    mesh = fault_mesh(workers=0, **SLOW_TASKS)  # the work is queued first, then a worker starts
    channel, api = _api(mesh)
    async with channel:
        highs = [await _submit(api, 1, 4000, HIGH) for _ in range(2)]
        batch = await _submit(api, 1, 40, BATCH)
        high_stream = keys.dispatch_stream(highs[0], 1, Priority.HIGH)
        batch_stream = keys.dispatch_stream(batch, 1, Priority.BATCH)
        for _ in range(600):
            if await redis_client.exists(high_stream, batch_stream) == 2 and \
                    await redis_client.xlen(high_stream) >= 1000 and await redis_client.xlen(batch_stream) == 40:
                break
            await asyncio.sleep(0.05)
        mesh.start("vnas0", "vnas", free_port())
        status = await wait_for_end(api, batch, timeout=120)
        assert status.status == SUCCEEDED, status
        # The batch request finished while high work was still waiting for the worker.
        assert await _waiting_entries(redis_client, high_stream) > 200
        await _cancel(api, *highs)
