"""`make bench [SCENARIO=name]`: run benchmark scenarios on a private Redis, print a table, save JSON."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time

import redis.asyncio as redis

from bench.console import CONSOLE_SCENARIOS
from bench.mesh import bench_mesh, private_redis
from bench.report import report
from bench.scenarios import SCENARIOS as MESH_SCENARIOS
from bench.scenarios import Context, Scenario, channel
from bench.stats import peak_rss_mb, redis_commands
from vn.v1 import valuation_pb2_grpc

SCENARIOS = [*MESH_SCENARIOS, *CONSOLE_SCENARIOS]


async def run_scenario(scenario: Scenario, redis_url: str) -> dict[str, float]:
    if scenario.local is not None:
        return scenario.local()
    if not scenario.variants:
        return await run_on_mesh(scenario, redis_url, scenario.mesh_env)
    results: dict[str, dict[str, float]] = {}
    chosen = os.environ.get("BENCH_VARIANTS", "").split(",") if os.environ.get("BENCH_VARIANTS") else []
    for name, env in scenario.variants.items():
        if chosen and name not in chosen:
            continue
        print(f"  variant {name} ...", file=sys.stderr, flush=True)
        results[name] = await run_on_mesh(scenario, redis_url, {**scenario.mesh_env, **env})
    figures = {f"{name}.{key}": value for name, found in results.items() for key, value in found.items()}
    if scenario.combine is not None:
        figures.update(scenario.combine(results))
    return figures


async def run_on_mesh(scenario: Scenario, redis_url: str, env: dict[str, str]) -> dict[str, float]:
    assert scenario.run is not None
    client = redis.Redis.from_url(redis_url)
    await client.flushall()
    with bench_mesh(redis_url, workers=scenario.workers, **env) as mesh:
        async with channel(mesh) as grpc_channel:
            ctx = Context(mesh, client, valuation_pb2_grpc.ValuationServiceStub(grpc_channel))
            await client.config_resetstat()
            started = time.perf_counter()
            await scenario.run(ctx)
            ctx.figures["wall_s"] = time.perf_counter() - started
            commands = await redis_commands(client)
            if ctx.figures.get("tasks"):
                ctx.figures["redis_cmds_per_task"] = commands / ctx.figures["tasks"]
            for name, pid in mesh.pids().items():
                ctx.figures[f"rss_mb_{name}"] = peak_rss_mb(pid)
    await client.aclose()
    return ctx.figures


async def main_async(names: list[str]) -> int:
    chosen = [s for s in SCENARIOS if not names or s.name in names]
    unknown = set(names) - {s.name for s in SCENARIOS}
    if unknown:
        print(f"unknown scenario(s): {', '.join(sorted(unknown))}; "
              f"choose from {', '.join(s.name for s in SCENARIOS)}", file=sys.stderr)
        return 2
    results: dict[str, dict[str, float]] = {}
    with private_redis() as redis_url:
        for scenario in chosen:
            print(f"running {scenario.name} ...", file=sys.stderr, flush=True)
            results[scenario.name] = await run_scenario(scenario, redis_url)
    report(results, "bench")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("scenarios", nargs="*", help="scenario names (default: all)")
    return asyncio.run(main_async(parser.parse_args().scenarios))


if __name__ == "__main__":
    raise SystemExit(main())
