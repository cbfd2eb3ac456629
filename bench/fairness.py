"""The `fairness` scenarios: sync 2x10 latency alone, and again while a 20,000-task `batch` request runs on
the same workers; the batch request's throughput alone and under that load."""

from __future__ import annotations

import asyncio
import os
import time

from bench.requests import chained_request
from bench.stats import summary_ms
from vn.v1 import valuation_pb2, valuation_pb2_grpc

BATCH_TASKS = int(os.environ.get("BENCH_FAIRNESS_TASKS", "20000"))
SAMPLES = int(os.environ.get("BENCH_FAIRNESS_SAMPLES", "60"))
SUCCEEDED = valuation_pb2.REQUEST_STATUS_SUCCEEDED
Api = valuation_pb2_grpc.ValuationServiceStub


async def _sync(api: Api, body: bytes) -> float:
    started = time.perf_counter()
    reply = await api.Submit(valuation_pb2.SubmitRequest(xml=body, sync=True), timeout=120)
    if reply.status != SUCCEEDED:
        raise RuntimeError(f"request {reply.request_id} did not succeed: {reply.failure_detail}")
    return time.perf_counter() - started


async def _run_batch(api: Api, body: bytes) -> tuple[asyncio.Task[float], asyncio.Event]:
    """Submit the batch request; the task ends with its duration, the event fires when its group runs."""
    running = asyncio.Event()
    started = time.perf_counter()
    reply = await api.Submit(valuation_pb2.SubmitRequest(xml=body, priority=valuation_pb2.PRIORITY_BATCH),
                             timeout=60)

    async def follow() -> float:
        async for item in api.Watch(valuation_pb2.WatchRequest(request_id=reply.request_id), timeout=600):
            if item.event.status == "group_started":
                running.set()
            if item.event.status in ("succeeded", "failed", "cancelled"):
                if item.event.status != "succeeded":
                    raise RuntimeError(f"the batch request ended {item.event.status}: {item.event.detail}")
                return time.perf_counter() - started
        raise RuntimeError("the batch request's events ended early")

    return asyncio.create_task(follow()), running


async def measure(api: Api, figures: dict[str, float]) -> None:
    body = chained_request(2, 10)
    batch = chained_request(1, BATCH_TASKS)
    for _ in range(10):
        await _sync(api, body)
    alone = [await _sync(api, body) for _ in range(SAMPLES)]
    follow, _ = await _run_batch(api, batch)
    batch_alone = await follow
    follow, running = await _run_batch(api, batch)
    await running.wait()
    under = []
    while not follow.done() and len(under) < SAMPLES:
        under.append(await _sync(api, body))
    batch_loaded = await follow
    figures.update({f"alone_{k}": v for k, v in summary_ms(alone).items()})
    figures.update({f"under_batch_{k}": v for k, v in summary_ms(under).items()})
    figures["samples_under_batch"] = float(len(under))
    figures["p50_ratio"] = figures["under_batch_p50_ms"] / figures["alone_p50_ms"]
    figures["batch_alone_tasks_per_s"] = BATCH_TASKS / batch_alone
    figures["batch_under_load_tasks_per_s"] = BATCH_TASKS / batch_loaded
    figures["batch_throughput_kept"] = batch_alone / batch_loaded
    figures["tasks"] = float(2 * BATCH_TASKS + 20 * (10 + SAMPLES + len(under)))
