"""The ingest consumer acknowledges an entry only after a vnvs instance took the request."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import grpc
import redis.asyncio as redis

from tests.conftest import free_port, wait_until
from tests.vnapi.conftest import RunningVnapi
from tests.vnapi.support import FakeOrchestrator, submit_request
from vn.v1 import orchestrator_pb2, orchestrator_pb2_grpc
from vnapi.intake import Intake, Submission
from vnapi.settings import VnapiSettings
from vncommon import keys
from vncommon.streamtrim import prune_consumers, trim_stream

Start = Callable[[VnapiSettings], Awaitable[RunningVnapi]]


async def _pending(client: redis.Redis) -> int:
    summary = await client.xpending(keys.INGEST_STREAM, keys.INGEST_GROUP)
    return int(summary["pending"])


async def _settled(client: redis.Redis, count: int = 1) -> None:
    async def done() -> bool:
        groups = await client.xinfo_groups(keys.INGEST_STREAM)
        return await _pending(client) == 0 and bool(groups) and int(groups[0]["entries-read"] or 0) >= count

    await wait_until(done)


async def _events(client: redis.Redis, request_id: str) -> list[bytes]:
    return list(await client.lrange(keys.request_events_key(request_id), 0, -1))


async def test_an_entry_is_acked_only_after_orchestrate_accepted(
    vnapi: RunningVnapi, fake_vnvs: tuple[FakeOrchestrator, str], redis_client: redis.Redis
) -> None:
    orchestrator, _ = fake_vnvs
    orchestrator.hold = asyncio.Event()
    rid = (await vnapi.stub.Submit(submit_request(trace_id="t-ingest"), timeout=5)).request_id
    await wait_until(lambda: _true(rid in orchestrator.calls))
    await asyncio.sleep(0.2)
    assert await _pending(redis_client) == 1
    orchestrator.hold.set()
    await _settled(redis_client)
    assert orchestrator.calls == [rid]


async def test_received_is_published_once_before_orchestrate(
    vnapi: RunningVnapi, fake_vnvs: tuple[FakeOrchestrator, str], redis_client: redis.Redis
) -> None:
    fake_vnvs[0].failures = 2
    rid = (await vnapi.stub.Submit(submit_request(), timeout=5)).request_id
    await _settled(redis_client)
    events = await _events(redis_client, rid)
    assert len(events) == 1 and b'"received"' in events[0]
    assert await redis_client.hget(keys.request_state_key(rid), "receivedPublished") == b"1"


async def test_an_entry_whose_orchestrate_failed_is_retried_and_later_acked(
    vnapi: RunningVnapi, fake_vnvs: tuple[FakeOrchestrator, str], redis_client: redis.Redis
) -> None:
    fake_vnvs[0].failures = 3
    rid = (await vnapi.stub.Submit(submit_request(), timeout=5)).request_id
    await _settled(redis_client)
    assert fake_vnvs[0].calls == [rid] * 4


async def test_an_entry_waits_while_vnvs_is_unreachable_and_is_acked_once_it_answers(
    start_vnapi: Start, make_settings: Callable[..., VnapiSettings], redis_client: redis.Redis
) -> None:
    port = free_port()
    running = await start_vnapi(make_settings(vnvs_address=f"127.0.0.1:{port}"))
    await running.stub.Submit(submit_request(), timeout=5)
    await asyncio.sleep(0.5)
    assert await _pending(redis_client) == 1
    orchestrator = FakeOrchestrator()
    server = grpc.aio.server()
    orchestrator_pb2_grpc.add_OrchestratorServiceServicer_to_server(orchestrator, server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    try:
        await _settled(redis_client)
        assert len(orchestrator.calls) == 1
    finally:
        await server.stop(0)


async def test_already_running_and_already_finished_outcomes_are_acked_too(
    vnapi: RunningVnapi, fake_vnvs: tuple[FakeOrchestrator, str], redis_client: redis.Redis
) -> None:
    fake_vnvs[0].outcome = orchestrator_pb2.ORCHESTRATE_OUTCOME_ALREADY_RUNNING
    running = (await vnapi.stub.Submit(submit_request(), timeout=5)).request_id
    await _settled(redis_client, 1)
    fake_vnvs[0].outcome = orchestrator_pb2.ORCHESTRATE_OUTCOME_ALREADY_FINISHED
    finished = (await vnapi.stub.Submit(submit_request(), timeout=5)).request_id
    await _settled(redis_client, 2)
    assert fake_vnvs[0].calls == [running, finished]  # each taken at its first answer, none retried
    assert await _pending(redis_client) == 0


async def test_an_unspecified_outcome_is_not_taken_as_responsibility(
    vnapi: RunningVnapi, fake_vnvs: tuple[FakeOrchestrator, str], redis_client: redis.Redis
) -> None:
    fake_vnvs[0].outcome = orchestrator_pb2.ORCHESTRATE_OUTCOME_UNSPECIFIED
    await vnapi.stub.Submit(submit_request(), timeout=5)
    await wait_until(lambda: _true(len(fake_vnvs[0].calls) >= 2))
    assert await _pending(redis_client) == 1


async def test_an_entry_left_pending_by_a_dead_consumer_is_reclaimed(
    start_vnapi: Start, make_settings: Callable[..., VnapiSettings], fake_vnvs: tuple[FakeOrchestrator, str],
    redis_client: redis.Redis,
) -> None:
    await redis_client.xgroup_create(keys.INGEST_STREAM, keys.INGEST_GROUP, id="0", mkstream=True)
    accepted = await Intake(redis_client, 60).submit(Submission(xml=b"<vnml/>", group_count=1))
    taken = await redis_client.xreadgroup(keys.INGEST_GROUP, "vnapi-dead", {keys.INGEST_STREAM: ">"}, count=10)
    assert len(taken[0][1]) == 1
    await start_vnapi(make_settings(vnvs_address=fake_vnvs[1], ingest_claim_idle_ms=300))
    await _settled(redis_client)
    assert fake_vnvs[0].calls == [accepted.request_id]


async def test_an_entry_for_a_request_that_no_longer_exists_is_acked_without_orchestrate(
    vnapi: RunningVnapi, fake_vnvs: tuple[FakeOrchestrator, str], redis_client: redis.Redis
) -> None:
    await redis_client.xadd(keys.INGEST_STREAM, {"requestId": "gone", "traceId": "t"})
    await _settled(redis_client)
    assert fake_vnvs[0].calls == []


async def test_stopping_lets_an_in_flight_orchestrate_finish_and_ack(
    vnapi: RunningVnapi, fake_vnvs: tuple[FakeOrchestrator, str], redis_client: redis.Redis
) -> None:
    orchestrator, _ = fake_vnvs
    orchestrator.hold = asyncio.Event()
    rid = (await vnapi.stub.Submit(submit_request(), timeout=5)).request_id
    await wait_until(lambda: _true(rid in orchestrator.calls))
    vnapi.stop.set()
    await asyncio.sleep(0.2)
    assert not vnapi.task.done()
    orchestrator.hold.set()
    await asyncio.wait_for(vnapi.task, 10)
    assert await _pending(redis_client) == 0


async def test_trimming_never_drops_pending_or_undelivered_entries(redis_client: redis.Redis) -> None:
    await redis_client.xgroup_create(keys.INGEST_STREAM, keys.INGEST_GROUP, id="0", mkstream=True)
    ids = [await redis_client.xadd(keys.INGEST_STREAM, {"n": str(n)}) for n in range(300)]
    read = await redis_client.xreadgroup(keys.INGEST_GROUP, "c", {keys.INGEST_STREAM: ">"}, count=200)
    delivered = [entry_id for entry_id, _ in read[0][1]]
    await redis_client.xack(keys.INGEST_STREAM, keys.INGEST_GROUP, *delivered[:50], *delivered[51:])
    await trim_stream(redis_client, keys.INGEST_STREAM, 10)
    remaining = {entry_id for entry_id, _ in await redis_client.xrange(keys.INGEST_STREAM)}
    assert delivered[50] in remaining and set(ids[200:]) <= remaining


async def _true(value: bool) -> bool:
    return value


async def test_departed_consumers_without_pending_entries_are_pruned(redis_client: redis.Redis) -> None:
    await redis_client.xgroup_create(keys.INGEST_STREAM, keys.INGEST_GROUP, id="0", mkstream=True)
    await redis_client.xadd(keys.INGEST_STREAM, {"requestId": "r1"})
    second = await redis_client.xadd(keys.INGEST_STREAM, {"requestId": "r2"})
    await redis_client.xreadgroup(keys.INGEST_GROUP, "holds-one", {keys.INGEST_STREAM: ">"}, count=1)
    await redis_client.xreadgroup(keys.INGEST_GROUP, "acked-all", {keys.INGEST_STREAM: ">"}, count=1)
    await redis_client.xack(keys.INGEST_STREAM, keys.INGEST_GROUP, second)

    async def both_idle() -> bool:
        consumers = await redis_client.xinfo_consumers(keys.INGEST_STREAM, keys.INGEST_GROUP)
        return all(int(consumer["idle"]) > 10 for consumer in consumers)

    await wait_until(both_idle)
    removed = await prune_consumers(redis_client, keys.INGEST_STREAM, keys.INGEST_GROUP, idle_ms=10)
    assert removed == ["acked-all"]
    names = [c["name"] for c in await redis_client.xinfo_consumers(keys.INGEST_STREAM, keys.INGEST_GROUP)]
    assert names == [b"holds-one"]


async def test_a_hand_over_still_running_after_the_grace_is_cancelled_and_its_entry_handed_back(
    vnapi: RunningVnapi, fake_vnvs: tuple[FakeOrchestrator, str], redis_client: redis.Redis
) -> None:
    orchestrator, _ = fake_vnvs
    orchestrator.hold = asyncio.Event()  # vnvs hangs: the call never answers
    rid = (await vnapi.stub.Submit(submit_request(), timeout=5)).request_id
    await wait_until(lambda: _true(rid in orchestrator.calls))
    started = asyncio.get_running_loop().time()
    vnapi.stop.set()
    await asyncio.wait_for(vnapi.task, 10)
    grace_s = vnapi.app.settings.shutdown_grace_ms / 1000
    assert grace_s <= asyncio.get_running_loop().time() - started < grace_s + 3
    [item] = await redis_client.xpending_range(keys.INGEST_STREAM, keys.INGEST_GROUP, "-", "+", 10)
    # Handed back: it already looks idle, so a live vnapi takes it over without waiting.
    assert item["time_since_delivered"] >= vnapi.app.settings.ingest_claim_idle_ms


async def test_a_deleted_ingest_stream_is_recreated_and_entries_flow_again(
    vnapi: RunningVnapi, fake_vnvs: tuple[FakeOrchestrator, str], redis_client: redis.Redis
) -> None:
    first = (await vnapi.stub.Submit(submit_request(), timeout=5)).request_id
    await _settled(redis_client)
    await redis_client.delete(keys.INGEST_STREAM)  # the stream and its group are gone (NOGROUP)
    await asyncio.sleep(0.3)  # the consumer's next reads fail before the new entry exists
    second = (await vnapi.stub.Submit(submit_request(), timeout=5)).request_id
    await _settled(redis_client)
    assert fake_vnvs[0].calls == [first, second]
    assert not vnapi.task.done()
