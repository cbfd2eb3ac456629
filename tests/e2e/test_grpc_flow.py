"""End to end over gRPC: real vnapi, vnvs, vnas processes, real Redis, the example valuation script."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest

from tests.e2e.conftest import MeshFactory
from tests.e2e.helpers import (
    Status,
    amounts,
    detail,
    example_request,
    response_groups,
    simple_request,
    stub,
    write_script,
)
from vn.v1 import valuation_pb2

pytestmark = pytest.mark.timeout(120)


async def test_async_submit_progresses_to_results_and_sync_returns_the_same_bytes(start_mesh: MeshFactory) -> None:
    mesh = start_mesh(gateway=False)
    channel, api = stub(mesh)
    async with channel:
        submitted = await api.Submit(valuation_pb2.SubmitRequest(xml=example_request()), timeout=10)
        assert submitted.status == Status.REQUEST_STATUS_RECEIVED
        seen: list[int] = []
        for _ in range(600):
            status = await api.GetStatus(valuation_pb2.GetStatusRequest(request_id=submitted.request_id), timeout=5)
            seen.append(status.status)
            if status.status in (Status.REQUEST_STATUS_SUCCEEDED, Status.REQUEST_STATUS_FAILED):
                break
            await asyncio.sleep(0.02)
        assert status.status == Status.REQUEST_STATUS_SUCCEEDED, status.failure_detail + mesh.log_tail()
        assert seen == sorted(seen), f"status went backwards: {seen}"  # RECEIVED < STARTED < SUCCEEDED
        assert status.group_count == 3 and status.HasField("completed_at") and status.HasField("started_at")
        assert status.progress.groups_completed == 3
        results = await api.GetResults(valuation_pb2.GetResultsRequest(request_id=submitted.request_id), timeout=5)
        groups = response_groups(results.response_xml)
        assert [len(g) for g in groups] == [3, 3, 1]
        assert all(float(a) > 0 for a in amounts(results.response_xml, 0))

        sync = await api.Submit(valuation_pb2.SubmitRequest(xml=example_request(), sync=True), timeout=60)
        assert sync.status == Status.REQUEST_STATUS_SUCCEEDED
        again = await api.GetResults(valuation_pb2.GetResultsRequest(request_id=sync.request_id), timeout=5)
        assert sync.response_xml == again.response_xml
        # Deterministic script, same input: the same figures (the response differs only by request id).
        assert amounts(sync.response_xml, 0) == amounts(results.response_xml, 0)


async def test_later_groups_read_the_results_of_earlier_groups(start_mesh: MeshFactory) -> None:
    mesh = start_mesh(gateway=False)
    channel, api = stub(mesh)
    async with channel:
        reply = await api.Submit(valuation_pb2.SubmitRequest(xml=simple_request(groups=3, tasks=4), sync=True),
                                 timeout=60)
    assert reply.status == Status.REQUEST_STATUS_SUCCEEDED, reply.failure_detail
    groups = response_groups(reply.response_xml)
    assert [len(g) for g in groups] == [4, 4, 4]
    first = amounts(reply.response_xml, 0)
    for later in (1, 2):
        base_prices = [v.findtext("basePrice/amount") for v in groups[later]]
        assert base_prices == (first if later == 1 else amounts(reply.response_xml, 1))


async def test_ten_concurrent_requests_all_succeed_with_their_own_results(start_mesh: MeshFactory) -> None:
    mesh = start_mesh(gateway=False)
    channel, api = stub(mesh)
    async with channel:
        bodies = [simple_request(groups=2, tasks=i + 1) for i in range(10)]
        replies = await asyncio.gather(*(
            api.Submit(valuation_pb2.SubmitRequest(xml=body, sync=True), timeout=90) for body in bodies))
    for index, reply in enumerate(replies):
        assert reply.status == Status.REQUEST_STATUS_SUCCEEDED, reply.failure_detail
        assert [len(g) for g in response_groups(reply.response_xml)] == [index + 1, index + 1]
    assert len({r.request_id for r in replies}) == 10


async def test_a_failed_attempt_is_retried_and_then_succeeds(start_mesh: MeshFactory, tmp_path: Path) -> None:
    script = write_script(tmp_path, "flaky.sh",
                          'if [ "$VN_ATTEMPT" = "1" ]; then echo "first attempt fails" >&2; exit 3; fi\n'
                          'echo 101.25\n')
    mesh = start_mesh(gateway=False, VNAS_SCRIPT=str(script))
    channel, api = stub(mesh)
    async with channel:
        reply = await api.Submit(valuation_pb2.SubmitRequest(xml=simple_request(tasks=3), sync=True), timeout=60)
        await api.GetStatus(valuation_pb2.GetStatusRequest(request_id=reply.request_id), timeout=5)
    assert reply.status == Status.REQUEST_STATUS_SUCCEEDED, reply.failure_detail
    assert amounts(reply.response_xml, 0) == ["101.25"] * 3


async def test_exhausted_retries_fail_the_request_with_group_task_attempts_and_error(
    start_mesh: MeshFactory, tmp_path: Path
) -> None:
    script = write_script(tmp_path, "broken.sh", 'echo "model did not converge" >&2\nexit 4\n')
    mesh = start_mesh(gateway=False, VNAS_SCRIPT=str(script), MAX_TASK_RETRIES="2")
    channel, api = stub(mesh)
    async with channel:
        reply = await api.Submit(valuation_pb2.SubmitRequest(xml=simple_request(tasks=1), sync=True), timeout=60)
        assert reply.status == Status.REQUEST_STATUS_FAILED
        failure = detail(reply.failure_detail)
        assert failure["reason"] == "TASK_RETRIES_EXHAUSTED"
        assert failure["group"] == "g1" and failure["taskId"] == "1" and failure["attempts"] == "2"
        assert "exit" in str(failure["error"]) and "model did not converge" in str(failure["error"])
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await api.GetResults(valuation_pb2.GetResultsRequest(request_id=reply.request_id), timeout=5)
        assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_watch_streams_the_events_in_order_with_exactly_one_terminal_event(start_mesh: MeshFactory) -> None:
    mesh = start_mesh(gateway=False)
    channel, api = stub(mesh)
    async with channel:
        submitted = await api.Submit(valuation_pb2.SubmitRequest(xml=simple_request(groups=2, tasks=2)), timeout=10)
        events = [r.event async for r in api.Watch(valuation_pb2.WatchRequest(request_id=submitted.request_id),
                                                   timeout=60)]
    assert [(e.status, e.group_index) for e in events] == [
        ("received", -1), ("started", -1), ("group_started", 0), ("group_completed", 0),
        ("group_started", 1), ("group_completed", 1), ("succeeded", -1)]
    assert [e.sequence for e in events] == list(range(1, 8))


async def test_a_hydration_error_fails_the_request_with_its_location(start_mesh: MeshFactory) -> None:
    mesh = start_mesh(gateway=False)
    bad = simple_request(tasks=1).replace(b'<market select="/vnml/project/market"/>',
                                          b'<market select="/vnml/project/nowhere"/>')
    channel, api = stub(mesh)
    async with channel:
        reply = await api.Submit(valuation_pb2.SubmitRequest(xml=bad, sync=True), timeout=60)
    assert reply.status == Status.REQUEST_STATUS_FAILED
    failure = detail(reply.failure_detail)
    assert failure["reason"] == "HYDRATION_FAILED"
    assert "/vnml/project/nowhere" in str(failure["message"])
