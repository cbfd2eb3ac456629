"""Two vnapi processes with STREAM_SHARDS=6: each makes its requests on its own home lifecycle shard, and a
Watch on the other instance still follows them through the end (its hub reads that shard on demand)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest
import redis.asyncio as redis

from tests.e2e.conftest import MeshFactory
from tests.e2e.helpers import OPTIONS, Status, simple_request, stub, write_script
from vn.v1 import valuation_pb2, valuation_pb2_grpc
from vncommon import keys
from vncommon.localmesh import free_port

pytestmark = pytest.mark.timeout(120)
SHARDS = 6
GROUPS = 3
EVERY_EVENT = [("received", -1), ("started", -1),
               *[(status, group) for group in range(GROUPS) for status in ("group_started", "group_completed")],
               ("succeeded", -1)]


async def _watch(api: valuation_pb2_grpc.ValuationServiceStub, request_id: str) -> list[tuple[str, int]]:
    events = [r.event async for r in api.Watch(valuation_pb2.WatchRequest(request_id=request_id), timeout=60)]
    assert [event.sequence for event in events] == list(range(1, len(events) + 1))
    return [(event.status, event.group_index) for event in events]


async def _newest_other_than(client: redis.Redis, known: str) -> str:
    for _ in range(500):
        ids = [rid.decode() if isinstance(rid, bytes) else str(rid)
               for rid in await client.zrange(keys.RECENT_REQUESTS, 0, -1)]
        if found := [rid for rid in ids if rid != known]:
            return found[0]
        await asyncio.sleep(0.02)
    raise AssertionError("the sync submission was never stored")


async def test_a_watch_on_one_vnapi_follows_requests_submitted_on_another(
        redis_client: redis.Redis, start_mesh: MeshFactory, tmp_path: Path) -> None:
    script = write_script(tmp_path, "slow.sh", "sleep 0.2\necho 101.25\n")
    mesh = start_mesh(gateway=False, STREAM_SHARDS=str(SHARDS), VNAS_SCRIPT=str(script))
    other_port = free_port()
    mesh.start("vnapi-b", "vnapi", other_port, VNAPI_CONSUMER_NAME="vnapi-b")
    channel, submitter = stub(mesh)
    other = grpc.aio.insecure_channel(f"127.0.0.1:{other_port}", options=OPTIONS)
    watcher = valuation_pb2_grpc.ValuationServiceStub(other)
    body = simple_request(groups=GROUPS, tasks=2)
    async with channel, other:
        first = (await submitter.Submit(valuation_pb2.SubmitRequest(xml=body), timeout=10)).request_id
        assert await _watch(watcher, first) == EVERY_EVENT

        answering = asyncio.ensure_future(submitter.Submit(valuation_pb2.SubmitRequest(xml=body, sync=True),
                                                           timeout=60))
        second = await _newest_other_than(redis_client, first)
        assert await _watch(watcher, second) == EVERY_EVENT
        answer = await answering
    assert answer.request_id == second and answer.status == Status.REQUEST_STATUS_SUCCEEDED, mesh.log_tail()
    # Both were made on the submitter's home shard; the two instances took different homes.
    assert keys.lifecycle_shard_of(first, SHARDS) == keys.lifecycle_shard_of(second, SHARDS)
    assert int(await redis_client.get(keys.LIFECYCLE_HOMES) or 0) == 2
