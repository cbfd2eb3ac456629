"""`make bench SCENARIO=console-load`: the console's API with 10,000 recent requests and a 5,000-task one.

The 5,000-task request and a few small ones run through the mesh for real (their task attempts are
recorded by the workers); the rest of the 10,000-entry index is seeded with the same writer vnapi
uses (console_records.queue_submitted) and a state hash per request, so the list pages over a full
index without running 10,000 requests first. Each page's JSON is fetched over HTTP from the gateway.
"""

from __future__ import annotations

import time
from typing import Any

import aiohttp

from bench.requests import chained_request
from bench.scenarios import Context, Scenario, sync_submit
from bench.stats import summary_ms
from vn.v1 import valuation_pb2
from vncommon import console_records, keys
from vncommon.state import REQUEST_HASH, Status
from vncommon.timeutil import utc_now_iso

INDEXED = 10_000
BIG_TASKS = 5_000
REPEATS = 20
TTL_S = 86_400


async def _seed(ctx: Context, count: int) -> None:
    now_ms = int(time.time() * 1000)
    statuses = (Status.SUCCEEDED, Status.SUCCEEDED, Status.SUCCEEDED, Status.FAILED, Status.STARTED)
    for start in range(0, count, 1000):
        pipe: Any = ctx.redis.pipeline(transaction=False)
        for n in range(start, min(start + 1000, count)):
            request_id = f"seeded{n:026d}"
            pipe.hset(keys.request_state_key(request_id), mapping={
                REQUEST_HASH.status: str(statuses[n % len(statuses)]), REQUEST_HASH.group_count: 2,
                REQUEST_HASH.current_group: 1, REQUEST_HASH.received_at: utc_now_iso(),
                REQUEST_HASH.retry_count: 0})
            for group_index in range(2):
                pipe.hset(keys.group_state_key(request_id, group_index), mapping={"expected": 10, "completed": 10})
            console_records.queue_submitted(pipe, request_id, now_ms - count + n, TTL_S)
        await pipe.execute()


async def _time_get(session: aiohttp.ClientSession, url: str) -> tuple[list[float], int]:
    samples, size = [], 0
    for _ in range(REPEATS):
        started = time.perf_counter()
        async with session.get(url) as response:
            body = await response.read()
            if response.status != 200:
                raise RuntimeError(f"GET {url}: {response.status} {body[:200]!r}")
        samples.append(time.perf_counter() - started)
        size = len(body)
    return samples, size


async def console_load(ctx: Context) -> None:
    await sync_submit(ctx.api, chained_request(1, 10))
    reply = await ctx.api.Submit(valuation_pb2.SubmitRequest(xml=chained_request(1, BIG_TASKS), sync=True),
                                 timeout=300)
    big = reply.request_id
    await _seed(ctx, INDEXED - 2)
    ctx.figures["indexed"] = float(await ctx.redis.zcard(keys.RECENT_REQUESTS))
    ctx.figures["index_bytes_per_request"] = (await ctx.redis.memory_usage(keys.RECENT_REQUESTS) or 0) / INDEXED
    ctx.figures["attempts_bytes_per_task"] = (
        await ctx.redis.memory_usage(keys.task_attempts_key(big, 0), samples=0) or 0) / BIG_TASKS
    pages = {
        "list_50": "/console/api/requests?limit=50",
        "list_500": "/console/api/requests?limit=500",
        "list_failed_filter": "/console/api/requests?status=failed&limit=50",
        "list_search_miss": "/console/api/requests?q=nosuchid",
        "request_5000_tasks": f"/console/api/requests/{big}",
        "workers": "/console/api/workers",
    }
    async with aiohttp.ClientSession(ctx.mesh.http) as session:
        for name, path in pages.items():
            samples, size = await _time_get(session, path)
            summary = summary_ms(samples)
            ctx.figures[f"{name}_p50_ms"] = summary["p50_ms"]
            ctx.figures[f"{name}_p95_ms"] = summary["p95_ms"]
            ctx.figures[f"{name}_kib"] = size / 1024
    ctx.figures["tasks"] = float(BIG_TASKS + 10)


CONSOLE_SCENARIOS = [Scenario("console-load", console_load)]
