"""Admission by bytes (VNVS_MAX_INFLIGHT_BYTES): more requests than fit, submitted at once, all finish and
none is refused, while vnvs never drives more than its budget; one request larger than the whole budget
fails at once naming the setting."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime

import pytest
import redis.asyncio as redis

from tests.e2e.conftest import MeshFactory
from tests.e2e.helpers import Status, detail, simple_request, stub
from vn.v1 import valuation_pb2
from vncommon import keys

pytestmark = pytest.mark.timeout(180)
REQUESTS = 10
FIT_AT_ONCE = 2


async def _running_interval(client: redis.Redis, request_id: str) -> tuple[datetime, datetime]:
    """When the request's run started and ended, from its recorded lifecycle events."""
    events = [json.loads(raw) for raw in await client.lrange(keys.request_events_key(request_id), 0, -1)]
    times = {event["status"]: datetime.fromisoformat(event["timestamp"]) for event in events}
    return times["started"], times["succeeded"]


def _most_at_once(intervals: list[tuple[datetime, datetime]]) -> int:
    edges = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    running = most = 0
    for _, step in edges:
        running += step
        most = max(most, running)
    return most


async def test_more_requests_than_fit_all_succeed_none_refused_and_the_budget_holds(
    start_mesh: MeshFactory, redis_client: redis.Redis
) -> None:
    body = simple_request(groups=2, tasks=3)
    budget = len(body) * FIT_AT_ONCE + len(body) // 2  # room for two, not three
    mesh = start_mesh(gateway=False, VNVS_MAX_INFLIGHT_BYTES=str(budget))
    channel, api = stub(mesh)
    async with channel:
        submitted = await asyncio.gather(*(
            api.Submit(valuation_pb2.SubmitRequest(xml=body), timeout=30) for _ in range(REQUESTS)))
        ids = [answer.request_id for answer in submitted]
        assert all(answer.status == Status.REQUEST_STATUS_RECEIVED for answer in submitted)
        finals: dict[str, valuation_pb2.GetStatusResponse] = {}
        for _ in range(1500):
            for request_id in set(ids) - set(finals):
                status = await api.GetStatus(valuation_pb2.GetStatusRequest(request_id=request_id), timeout=5)
                if status.status in (Status.REQUEST_STATUS_SUCCEEDED, Status.REQUEST_STATUS_FAILED):
                    finals[request_id] = status
            if len(finals) == REQUESTS:
                break
            await asyncio.sleep(0.05)
    assert len(finals) == REQUESTS, f"{REQUESTS - len(finals)} requests never finished\n{mesh.log_tail()}"
    failed = {rid: s.failure_detail for rid, s in finals.items() if s.status != Status.REQUEST_STATUS_SUCCEEDED}
    assert not failed, failed
    intervals = [await _running_interval(redis_client, request_id) for request_id in ids]
    most = _most_at_once(intervals)
    assert most <= FIT_AT_ONCE, f"{most} requests ran at once; the budget admits {FIT_AT_ONCE}"
    # Admission really held some back: they ran one after another, not all together.
    assert max(start for start, _ in intervals) > min(end for _, end in intervals)


async def test_a_request_larger_than_the_whole_budget_fails_at_once_naming_the_setting(
    start_mesh: MeshFactory,
) -> None:
    small, large = simple_request(1, 1), simple_request(1, 40)
    mesh = start_mesh(gateway=False, VNVS_MAX_INFLIGHT_BYTES=str(len(small) * 2))
    channel, api = stub(mesh)
    async with channel:
        ok = await api.Submit(valuation_pb2.SubmitRequest(xml=small, sync=True), timeout=60)
        assert ok.status == Status.REQUEST_STATUS_SUCCEEDED, ok.failure_detail + mesh.log_tail()
        answer = await api.Submit(valuation_pb2.SubmitRequest(xml=large, sync=True), timeout=60)
    assert answer.status == Status.REQUEST_STATUS_FAILED and not answer.timed_out
    failure = detail(answer.failure_detail)
    assert failure["reason"] == "REQUEST_OVER_BUDGET"
    assert "VNVS_MAX_INFLIGHT_BYTES" in str(failure["message"]) and failure["sizeBytes"] == str(len(large))
