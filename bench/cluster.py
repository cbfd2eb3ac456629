"""`make bench-cluster [SCENARIO=name]`: benchmarks on a local 6-node Redis Cluster (REDIS_MODE=cluster).

- concurrent-2x10 and fanout-1x5000 with STREAM_SHARDS 1 and 6: throughput, and the share of Redis
  commands each master served (INFO commandstats per master) with the bytes it moved;
- vnapi-instances: 1, 2 and 4 vnapi instances at the same total load: vnapi CPU, Redis bytes and commands
  per request (each vnapi reads the lifecycle events of its home shard only, so they should stay flat).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import redis.asyncio as redis

from bench.mesh import bench_mesh
from bench.report import report
from bench.requests import chained_request
from bench.scenarios import Context, channel, concurrent_2x10, fanout_1x5000, sync_submit
from bench.stats import cpu_seconds, wakeups
from vn.v1 import valuation_pb2_grpc
from vncommon.localcluster import LocalCluster
from vncommon.redisconn import create_redis

SECONDS = float(os.environ.get("BENCH_SECONDS", "10"))
RATE = float(os.environ.get("BENCH_RATE", "40"))  # vnapi-instances: requests/s in all


async def _masters(cluster: LocalCluster) -> dict[int, redis.Redis]:
    return {port: redis.Redis(host="127.0.0.1", port=port) for port in cluster.masters()}


async def _reset(masters: dict[int, redis.Redis]) -> None:
    for client in masters.values():
        await client.config_resetstat()


async def _per_master(masters: dict[int, redis.Redis]) -> dict[int, tuple[int, int]]:
    """(commands, bytes in + out) each master served since the reset."""
    found = {}
    for port, client in masters.items():
        stats: Any = await client.info("commandstats")
        calls = sum(int(v["calls"]) for k, v in stats.items() if k.startswith("cmdstat_")
                    and k not in ("cmdstat_info", "cmdstat_config", "cmdstat_cluster"))
        net: Any = await client.info("stats")
        found[port] = (calls, int(net["total_net_input_bytes"]) + int(net["total_net_output_bytes"]))
    return found


def _shares(figures: dict[str, float], served: dict[int, tuple[int, int]]) -> None:
    total = sum(calls for calls, _ in served.values()) or 1
    for index, (calls, moved) in enumerate(sorted(served.values(), reverse=True)):
        figures[f"master{index}_command_share"] = calls / total
        figures[f"master{index}_mbytes"] = moved / 1e6
    figures["redis_commands"] = float(total)
    figures["redis_mbytes"] = sum(moved for _, moved in served.values()) / 1e6
    if figures.get("tasks"):
        figures["redis_cmds_per_task"] = total / figures["tasks"]
        figures["redis_bytes_per_task"] = figures["redis_mbytes"] * 1e6 / figures["tasks"]


async def shards_scenario(cluster: LocalCluster, run: Callable[[Context], Awaitable[None]], shards: int
                          ) -> dict[str, float]:
    masters = await _masters(cluster)
    client = create_redis(cluster.url, mode="cluster")
    await client.flushall()
    env = {"REDIS_MODE": "cluster", "STREAM_SHARDS": str(shards), "BENCH_SECONDS": str(SECONDS)}
    os.environ["BENCH_SECONDS"] = str(SECONDS)
    with bench_mesh(cluster.url, **env) as mesh:
        async with channel(mesh) as grpc_channel:
            ctx = Context(mesh, client, valuation_pb2_grpc.ValuationServiceStub(grpc_channel))
            await _reset(masters)
            started = time.perf_counter()
            await run(ctx)
            ctx.figures["wall_s"] = time.perf_counter() - started
            _shares(ctx.figures, await _per_master(masters))
    await client.aclose()
    for master in masters.values():
        await master.aclose()
    return ctx.figures


async def vnapi_instances(cluster: LocalCluster, instances: int, rate: float = RATE, clients: int = 20
                          ) -> dict[str, float]:
    """The same total load, `rate` sync 2x10 requests/s from `clients` submitters, spread over `instances`
    vnapi. An open loop, so every variant serves the same requests per second: in a closed loop the
    slower variant also does less per second, and its fixed costs are shared by fewer requests."""
    masters = await _masters(cluster)
    client = create_redis(cluster.url, mode="cluster")
    await client.flushall()
    with bench_mesh(cluster.url, REDIS_MODE="cluster", STREAM_SHARDS="6") as mesh:
        extra = mesh.fresh_ports(instances - 1)
        for index, port in enumerate(extra, start=1):
            mesh.start(f"vnapi{index}", "vnapi", port)
        addresses = [mesh.vnapi_address] + [f"127.0.0.1:{port}" for port in extra]
        channels = [grpc_channel_to(address) for address in addresses]
        apis = [valuation_pb2_grpc.ValuationServiceStub(c) for c in channels]
        body = chained_request(2, 10)
        await asyncio.gather(*(sync_submit(apis[i % instances], body) for i in range(clients)))
        vnapi_pids = {name: pid for name, pid in mesh.pids().items() if name.startswith("vnapi")}
        cpu_before = {name: cpu_seconds(pid) for name, pid in vnapi_pids.items()}
        wakeups_before = {name: wakeups(pid) for name, pid in vnapi_pids.items()}
        await _reset(masters)
        done = 0
        slots = itertools.count()
        started = time.perf_counter()
        deadline = started + SECONDS

        async def submitter() -> None:
            nonlocal done
            while time.perf_counter() < deadline:
                slot = next(slots)
                await asyncio.sleep(max(0.0, started + slot / rate - time.perf_counter()))
                await sync_submit(apis[slot % instances], body)
                done += 1

        await asyncio.gather(*(submitter() for _ in range(clients)))
        elapsed = time.perf_counter() - started
        served = await _per_master(masters)
        cpu = sum(cpu_seconds(pid) - cpu_before[name] for name, pid in vnapi_pids.items())
        woken = sum(wakeups(pid) - wakeups_before[name] for name, pid in vnapi_pids.items())
        for grpc_channel in channels:
            await grpc_channel.close()
    figures = {"instances": float(instances), "requests_per_s_per_instance": done / elapsed / instances,
               "requests_per_s": done / elapsed,
               "vnapi_cpu_ms_per_request": cpu * 1000 / max(done, 1),
               "vnapi_wakeups_per_request": woken / max(done, 1),
               "vnapi_cpu_us_per_wakeup": cpu * 1e6 / max(woken, 1),
               "redis_bytes_per_request": sum(moved for _, moved in served.values()) / max(done, 1),
               "redis_cmds_per_request": sum(calls for calls, _ in served.values()) / max(done, 1)}
    await client.aclose()
    for master in masters.values():
        await master.aclose()
    return figures


def grpc_channel_to(address: str) -> Any:
    import grpc

    from bench.scenarios import MAX_MESSAGE
    return grpc.aio.insecure_channel(address, options=[("grpc.max_send_message_length", MAX_MESSAGE),
                                                       ("grpc.max_receive_message_length", MAX_MESSAGE)])


SCENARIOS: dict[str, Callable[[LocalCluster], Awaitable[dict[str, float]]]] = {
    "cluster-concurrent-2x10-shards1": lambda c: shards_scenario(c, concurrent_2x10, 1),
    "cluster-concurrent-2x10-shards6": lambda c: shards_scenario(c, concurrent_2x10, 6),
    "cluster-fanout-1x5000-shards1": lambda c: shards_scenario(c, fanout_1x5000, 1),
    "cluster-fanout-1x5000-shards6": lambda c: shards_scenario(c, fanout_1x5000, 6),
    "vnapi-instances-1": lambda c: vnapi_instances(c, 1),
    "vnapi-instances-2": lambda c: vnapi_instances(c, 2),
    "vnapi-instances-4": lambda c: vnapi_instances(c, 4),
    # The control: one vnapi at the load each of the 4 above carries.
    "vnapi-instances-1-quarter-load": lambda c: vnapi_instances(c, 1, RATE / 4),
}


async def main_async(names: list[str]) -> int:
    chosen = [name for name in SCENARIOS if not names or any(name.startswith(n) for n in names)]
    if not chosen:
        print(f"unknown scenario(s); choose from {', '.join(SCENARIOS)}", file=sys.stderr)
        return 2
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="vn-bench-cluster-") as workdir:
        cluster = LocalCluster(Path(workdir))
        cluster.start()
        try:
            for name in chosen:
                print(f"running {name} ...", file=sys.stderr, flush=True)
                results[name] = await SCENARIOS[name](cluster)
        finally:
            cluster.stop()
    report(results, "bench-cluster", decimals=3)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cluster")
    parser.add_argument("scenarios", nargs="*", help="scenario names or prefixes (default: all)")
    return asyncio.run(main_async(parser.parse_args().scenarios))


if __name__ == "__main__":
    raise SystemExit(main())
