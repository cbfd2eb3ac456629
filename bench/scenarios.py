"""The benchmark scenarios: each runs against a fresh mesh and returns its figures."""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp
import grpc
import redis.asyncio as redis

from bench import bench_hydration, bench_tracing, fairness, many_large, script_quantlib, tracing_cost
from bench.mesh import SHELL_SCRIPT
from bench.requests import chained_request, sized_request
from bench.stats import mesh_cpu_seconds, peak_rss_mb, redis_commands, redis_cpu_seconds, summary_ms, tree_cpu_seconds
from vn.v1 import valuation_pb2, valuation_pb2_grpc
from vncommon.localmesh import LocalMesh
from vncommon.state import Status

MAX_MESSAGE = 12 * 1024 * 1024
SUCCEEDED = valuation_pb2.RequestStatus.REQUEST_STATUS_SUCCEEDED


@dataclass
class Context:
    mesh: LocalMesh
    redis: redis.Redis
    api: valuation_pb2_grpc.ValuationServiceStub
    figures: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Scenario:
    name: str
    run: Callable[[Context], Awaitable[None]] | None
    mesh_env: dict[str, str] = field(default_factory=dict)
    workers: int = int(os.environ.get("BENCH_WORKERS", "2"))
    local: Callable[[], dict[str, float]] | None = None  # runs in this process, without a mesh
    # Named mesh environments: `run` goes once on a fresh mesh per variant, figures prefixed by its name.
    variants: dict[str, dict[str, str]] = field(default_factory=dict)
    combine: Callable[[dict[str, dict[str, float]]], dict[str, float]] | None = None  # figures across variants


def channel(mesh: LocalMesh) -> grpc.aio.Channel:
    return grpc.aio.insecure_channel(mesh.vnapi_address, options=[
        ("grpc.max_send_message_length", MAX_MESSAGE), ("grpc.max_receive_message_length", MAX_MESSAGE)])


async def sync_submit(api: valuation_pb2_grpc.ValuationServiceStub, body: bytes, deadline_s: float = 120) -> float:
    started = time.perf_counter()
    reply = await api.Submit(valuation_pb2.SubmitRequest(xml=body, sync=True), timeout=deadline_s)
    elapsed = time.perf_counter() - started
    if reply.status != SUCCEEDED:
        raise RuntimeError(f"request {reply.request_id} did not succeed: {reply.failure_detail}")
    return elapsed


async def sync_2x10(ctx: Context) -> None:
    body = chained_request(2, 10)
    for _ in range(20):
        await sync_submit(ctx.api, body)
    latencies = [await sync_submit(ctx.api, body) for _ in range(200)]
    ctx.figures.update({f"grpc_{k}": v for k, v in summary_ms(latencies).items()})
    rest = []
    async with aiohttp.ClientSession() as http:
        for index in range(120):
            started = time.perf_counter()
            async with http.post(f"{ctx.mesh.http}/valuation?sync=Y", data=body,
                                 headers={"Content-Type": "application/xml"}) as response:
                await response.read()
                if response.status != 200:
                    raise RuntimeError(f"REST sync submit answered {response.status}")
            if index >= 20:
                rest.append(time.perf_counter() - started)
    ctx.figures.update({f"rest_{k}": v for k, v in summary_ms(rest).items()})
    ctx.figures["tasks"] = 20 * (220 + 120)


async def concurrent_2x10(ctx: Context, clients: int = 20, seconds: float = 20.0, rate: float = 0.0) -> None:
    """`clients` sync 2x10 submitters, each sending its next request when the last one returned; with a
    `rate` (requests/s), no faster than that in all, so that variants compared do the same work per second."""
    seconds = float(os.environ.get("BENCH_SECONDS", seconds))
    body = chained_request(2, 10)
    await asyncio.gather(*(sync_submit(ctx.api, body) for _ in range(clients)))  # warm-up
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    slots = itertools.count()

    async def client() -> None:
        while time.perf_counter() < deadline:
            if rate:
                await asyncio.sleep(max(0.0, started + next(slots) / rate - time.perf_counter()))
            latencies.append(await sync_submit(ctx.api, body))

    # CPU of the service processes per request: far steadier than throughput on a shared machine.
    named = ctx.mesh.pids()
    pids = list(named.values())
    cpu_before = await mesh_cpu_seconds(pids, ctx.redis)
    each_before = {name: tree_cpu_seconds(pid) for name, pid in named.items()}
    redis_before = await redis_cpu_seconds(ctx.redis)
    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    elapsed = time.perf_counter() - started
    cpu = await mesh_cpu_seconds(pids, ctx.redis) - cpu_before
    requests = max(1, len(latencies))
    ctx.figures["cpu_ms_per_request"] = cpu * 1000 / requests
    for name, pid in named.items():  # where it goes: each service with its children, and Redis
        ctx.figures[f"cpu_ms_per_request.{name}"] = (tree_cpu_seconds(pid) - each_before[name]) * 1000 / requests
    ctx.figures["cpu_ms_per_request.redis"] = (await redis_cpu_seconds(ctx.redis) - redis_before) * 1000 / requests
    ctx.figures.update(summary_ms(latencies))
    ctx.figures["requests_per_s"] = len(latencies) / elapsed
    ctx.figures["tasks_per_s"] = len(latencies) * 20 / elapsed
    ctx.figures["tasks"] = (len(latencies) + clients) * 20


async def fanout(ctx: Context, tasks: int) -> None:
    await sync_submit(ctx.api, chained_request(1, 100))  # warm-up
    body = chained_request(1, tasks)
    pids = list(ctx.mesh.pids().values())
    cpu_before = await mesh_cpu_seconds(pids, ctx.redis)
    commands_before = await redis_commands(ctx.redis)
    elapsed = await sync_submit(ctx.api, body, deadline_s=1800)
    cpu = await mesh_cpu_seconds(pids, ctx.redis) - cpu_before
    ctx.figures.update({"end_to_end_ms": elapsed * 1000, "tasks_per_s": tasks / elapsed,
                        "cpu_ms_per_task": cpu * 1000 / tasks,
                        "redis_cmds_per_task_measured": (await redis_commands(ctx.redis) - commands_before) / tasks,
                        "payload_mib": len(body) / 1024 / 1024, "tasks": float(tasks + 100)})


async def fanout_1x5000(ctx: Context) -> None:
    await fanout(ctx, 5000)


async def fanout_1x100000(ctx: Context, tasks: int = 100_000) -> None:
    """Submitted async and followed with Watch: the response (tens of MiB) is not fetched."""
    await sync_submit(ctx.api, chained_request(1, 100))  # warm-up
    body = chained_request(1, tasks, compact=True)
    pids = list(ctx.mesh.pids().values())
    cpu_before = await mesh_cpu_seconds(pids, ctx.redis)
    commands_before = await redis_commands(ctx.redis)
    started = time.perf_counter()
    submitted = await ctx.api.Submit(valuation_pb2.SubmitRequest(xml=body), timeout=60)
    watch = ctx.api.Watch(valuation_pb2.WatchRequest(request_id=submitted.request_id), timeout=1800)
    statuses = [reply.event.status async for reply in watch]
    elapsed = time.perf_counter() - started
    if statuses[-1:] != [Status.SUCCEEDED]:
        raise RuntimeError(f"the {tasks}-task request ended {statuses[-1:]}")
    cpu = await mesh_cpu_seconds(pids, ctx.redis) - cpu_before
    ctx.figures.update({"end_to_end_ms": elapsed * 1000, "tasks_per_s": tasks / elapsed,
                        "cpu_ms_per_task": cpu * 1000 / tasks,
                        "redis_cmds_per_task_measured": (await redis_commands(ctx.redis) - commands_before) / tasks,
                        "payload_mib": len(body) / 1024 / 1024, "tasks": float(tasks + 100)})


async def script_1x1000(ctx: Context) -> None:
    await fanout(ctx, 1000)
    spawn = await spawn_seconds(SHELL_SCRIPT, 200)
    workers = 2 * int(ctx.mesh.env.get("VNAS_CONCURRENCY", "4"))
    # Share of wall time the workers spent just creating and reaping processes.
    ctx.figures["spawn_ms_per_task"] = spawn * 1000
    ctx.figures["spawn_share"] = min(1.0, spawn * 1000 / workers * ctx.figures["tasks_per_s"] / 1000)


async def spawn_seconds(script: str, count: int) -> float:
    started = time.perf_counter()
    for _ in range(count):
        process = await asyncio.create_subprocess_exec(script, stdout=asyncio.subprocess.DEVNULL)
        await process.wait()
    return (time.perf_counter() - started) / count


async def submit_async(ctx: Context, clients: int = 50, per_client: int = 20, paced_rate: float = 1.0) -> None:
    """Async Submit latency with 50 clients: closed loop (each submits again at once: saturation, so
    latency is clients / throughput) and paced (each submits `paced_rate` times a second)."""
    body = chained_request(1, 2)

    async def client(latencies: list[float], interval: float) -> None:
        await asyncio.sleep(random.uniform(0, interval))  # paced clients are not synchronised
        for _ in range(per_client):
            started = time.perf_counter()
            await ctx.api.Submit(valuation_pb2.SubmitRequest(xml=body), timeout=30)
            elapsed = time.perf_counter() - started
            latencies.append(elapsed)
            if interval:
                await asyncio.sleep(max(0.0, interval - elapsed))

    for mode, interval in (("closed", 0.0), ("paced", 1 / paced_rate)):
        latencies: list[float] = []
        started = time.perf_counter()
        await asyncio.gather(*(client(latencies, interval) for _ in range(clients)))
        ctx.figures[f"{mode}_submits_per_s"] = len(latencies) / (time.perf_counter() - started)
        ctx.figures.update({f"{mode}_{k}": v for k, v in summary_ms(latencies[clients:]).items()})
    ctx.figures["tasks"] = float(2 * clients * per_client * 2)


async def payload_10mib(ctx: Context) -> None:
    body = sized_request(10 * 1024 * 1024, 2000)
    ctx.figures["payload_mib"] = len(body) / 1024 / 1024
    before = {name: many_large.rss_mb(pid) for name, pid in ctx.mesh.pids().items()}
    sampler = many_large.Sampler(ctx.mesh)
    sampling = asyncio.create_task(sampler.run())
    started = time.perf_counter()
    submitted = await ctx.api.Submit(valuation_pb2.SubmitRequest(xml=body), timeout=30)
    ctx.figures["submit_ms"] = (time.perf_counter() - started) * 1000
    watch = ctx.api.Watch(valuation_pb2.WatchRequest(request_id=submitted.request_id), timeout=120)
    statuses = [reply.event.status async for reply in watch]
    if statuses[-1:] != [Status.SUCCEEDED]:
        raise RuntimeError(f"the 10 MiB request ended {statuses[-1:]}")
    ctx.figures["end_to_end_ms"] = (time.perf_counter() - started) * 1000
    ctx.figures["vnvs_rss_over_payload"] = peak_rss_mb(ctx.mesh.pids()["vnvs"]) / ctx.figures["payload_mib"]
    sampler.stop()
    await sampling
    # Growth over the process before the request: what the request itself cost, per payload byte.
    for name in ("vnapi", "vnvs"):
        grown = peak_rss_mb(ctx.mesh.pids()[name]) - before[name]
        ctx.figures[f"{name}_growth_over_payload"] = grown / ctx.figures["payload_mib"]
    ctx.figures["hydration_worker_peak_over_payload"] = sampler.worker_peak_mb / ctx.figures["payload_mib"]
    ctx.figures["tasks"] = 2000.0


async def scale_concurrency(ctx: Context) -> None:
    body = chained_request(2, 10)
    await asyncio.gather(*(sync_submit(ctx.api, body) for _ in range(10)))
    pids = list(ctx.mesh.pids().values())
    for in_flight in (1, 10, 100):
        rounds = max(3, 300 // in_flight)
        cpu_before = await mesh_cpu_seconds(pids, ctx.redis)
        commands_before = await redis_commands(ctx.redis)
        for _ in range(rounds):
            await asyncio.gather(*(sync_submit(ctx.api, body) for _ in range(in_flight)))
        requests = rounds * in_flight
        cpu = await mesh_cpu_seconds(pids, ctx.redis) - cpu_before
        commands = await redis_commands(ctx.redis) - commands_before
        ctx.figures[f"cpu_ms_per_request@{in_flight}"] = cpu * 1000 / requests
        ctx.figures[f"redis_cmds_per_request@{in_flight}"] = commands / requests
    ctx.figures["tasks"] = 0.0


async def fairness_under_batch(ctx: Context) -> None:
    await fairness.measure(ctx.api, ctx.figures)


SCENARIOS = [
    Scenario("hydrate-10mib", None, local=bench_hydration.run),
    Scenario("tracing-hooks", None, local=bench_tracing.run),
    Scenario("tracing-cost", tracing_cost.paced_2x10, variants=tracing_cost.VARIANTS, combine=tracing_cost.combine),
    Scenario("sync-2x10", sync_2x10),
    Scenario("concurrent-2x10", concurrent_2x10),
    Scenario("fanout-1x5000", fanout_1x5000),
    Scenario("fanout-1x100000", fanout_1x100000),
    Scenario("script-1x1000", script_1x1000, {"VNAS_SCRIPT": SHELL_SCRIPT, "VNAS_CONCURRENCY": "8"}),
    Scenario("script-quantlib", script_quantlib.script_quantlib, variants=script_quantlib.VARIANTS,
             workers=script_quantlib.WORKERS, combine=script_quantlib.combine),
    Scenario("submit-async", submit_async),
    Scenario("payload-10mib", payload_10mib),
    Scenario("scale-concurrency", scale_concurrency),
    Scenario("fairness", fairness_under_batch),
    Scenario("fairness-sleep5", fairness_under_batch, {"VNAS_EXECUTOR": "python:bench.noop:sleep_5ms"}),
    Scenario("many-large", many_large.many_large),
]
