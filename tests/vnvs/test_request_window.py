"""VNVS_REQUEST_WINDOW in-process against real Redis, with the fake worker: at most the window of one
request's tasks is out at once, the rest follow as tasks finish, and a resumed run counts what an earlier
run dispatched against the window."""

from __future__ import annotations

import asyncio

import redis.asyncio as redis
from lxml import etree

from tests.conftest import RedisServer, wait_until
from tests.vnvs.fake_worker import FakeWorker, valuation
from tests.vnvs.run_support import make_settings, new_run, status, store_request
from vn.v1 import streams_pb2
from vncommon import keys
from vnvs.settings import VnvsSettings

TASKS = 40
WINDOW = 8


def fan_out(tasks: int) -> bytes:
    instruments = "".join(f'<instrument name="I{n}"/>' for n in range(1, tasks + 1))
    return (f'<vnml><project name="wide"><portfolio>{instruments}</portfolio><group name="g">'
            '<valuation name="v" use="vn:link(/vnml/project/portfolio, instrument)"><instrument select="."/>'
            '<amount/></valuation></group></project></vnml>').encode()


def price(dispatch: streams_pb2.TaskDispatch, document: etree._Element) -> None:
    amount = valuation(document).find("amount")
    assert amount is not None
    amount.text = "1"


IDS = [str(task) for task in range(1, TASKS + 1)]


def holding_worker(client: redis.Redis) -> FakeWorker:
    """A fake worker that takes every first attempt from the stream but runs none until released."""
    worker = FakeWorker(client, price)
    for task_id in IDS:
        worker.hold(0, task_id)
    return worker


async def start_run(client: redis.Redis, settings: VnvsSettings, request_id: str,
                    worker: FakeWorker) -> asyncio.Task[None]:
    """A run of the request, once the worker holds a full window of it."""
    running = asyncio.create_task((await new_run(client, settings, request_id)).run())

    async def window_taken() -> bool:
        return len(worker.holding) == WINDOW
    await wait_until(window_taken, timeout=10)
    return running


async def finish(client: redis.Redis, request_id: str, worker: FakeWorker, run: asyncio.Task[None]) -> None:
    """Release every task, let the run end, and check that each task was sent and run exactly once."""
    for task_id in IDS:
        worker.release(0, task_id)
    await asyncio.wait_for(run, 20)
    assert await status(client, request_id) == "succeeded"
    assert worker.executions == {(0, task_id): 1 for task_id in IDS}
    assert await client.xlen(keys.DISPATCH_STREAM) == TASKS


async def test_at_most_the_window_is_out_and_the_rest_follows_as_tasks_finish(
        redis_client: redis.Redis, redis_server: RedisServer) -> None:
    rid = await store_request(redis_client, fan_out(TASKS))
    worker = holding_worker(redis_client)
    async with worker.running():
        running = await start_run(redis_client, make_settings(redis_server, request_window=WINDOW), rid, worker)
        await asyncio.sleep(0.3)  # nothing more is sent while the window is full
        assert len(worker.holding) == WINDOW
        assert await redis_client.xlen(keys.DISPATCH_STREAM) == WINDOW
        assert sorted(worker.holding) == sorted((0, task_id, 1) for task_id in IDS[:WINDOW])  # document order
        await finish(redis_client, rid, worker, running)


async def test_a_resumed_run_counts_what_the_earlier_run_sent_against_the_window(
        redis_client: redis.Redis, redis_server: RedisServer) -> None:
    rid = await store_request(redis_client, fan_out(TASKS))
    settings = make_settings(redis_server, request_window=WINDOW)
    worker = holding_worker(redis_client)
    async with worker.running():
        earlier = await start_run(redis_client, settings, rid, worker)
        earlier.cancel()  # the run is lost with its window out (its entries stay with the worker)
        await asyncio.gather(earlier, return_exceptions=True)
        resumed = asyncio.create_task((await new_run(redis_client, settings, rid)).run())
        await asyncio.sleep(0.3)
        # The window is still full of the earlier run's tasks: the resumed run sends nothing yet.
        assert await redis_client.xlen(keys.DISPATCH_STREAM) == WINDOW
        await finish(redis_client, rid, worker, resumed)
