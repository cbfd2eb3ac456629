"""`many-large`: many 10 MiB requests (2,000 tasks each) submitted at once; memory, lag and admission.

BENCH_MANY_LARGE_COUNT sets how many (default 100). Every service is restarted with a metrics port first,
so the worst event-loop lag of each and vnvs's admission figures can be read at the end. A sampler
records the resident size of every service process and of vnvs's hydration processes while it runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from typing import TYPE_CHECKING

import aiohttp
import psutil

from bench.requests import sized_request
from bench.stats import peak_rss_mb
from vn.v1 import valuation_pb2
from vncommon.localmesh import LocalMesh, free_port

if TYPE_CHECKING:
    from bench.scenarios import Context

MIB = 1024 * 1024
TERMINAL = {valuation_pb2.REQUEST_STATUS_SUCCEEDED, valuation_pb2.REQUEST_STATUS_FAILED}


def restart_with_metrics(mesh: LocalMesh) -> dict[str, str]:
    """Restart each service with a metrics port; the /metrics URL of each, by process name."""
    urls = {"gateway": f"{mesh.http}/metrics"}
    for name in [n for n in mesh.processes if n != "gateway"]:
        kind = "vnas" if name.startswith("vnas") else name
        port = free_port()
        grpc_port = {"vnvs": mesh.vnvs_port, "vnapi": mesh.vnapi_port}.get(name)
        if grpc_port is None:
            continue  # a worker's gRPC port is its own: restart it on a fresh one below
        mesh.kill(name, signal.SIGTERM)
        mesh.start(name, kind, grpc_port, METRICS_PORT=str(port))
        urls[name] = f"http://127.0.0.1:{port}/metrics"
    for name in [n for n in mesh.processes if n.startswith("vnas")]:
        port = free_port()
        mesh.kill(name, signal.SIGTERM)
        mesh.start(name, "vnas", free_port(), VNAS_METRICS_PORT=str(port))
        urls[name] = f"http://127.0.0.1:{port}/metrics"
    return urls


async def scrape(urls: dict[str, str]) -> dict[str, dict[str, float]]:
    found: dict[str, dict[str, float]] = {}
    async with aiohttp.ClientSession() as http:
        for name, url in urls.items():
            async with http.get(url) as response:
                text = await response.text()
            found[name] = {line.split()[0]: float(line.split()[1]) for line in text.splitlines()
                           if line and not line.startswith("#") and len(line.split()) == 2}
    return found


class Sampler:
    """Resident sizes every `interval_s`: each service, and vnvs's hydration processes together."""

    def __init__(self, mesh: LocalMesh, interval_s: float = 0.25) -> None:
        self.mesh = mesh
        self.interval_s = interval_s
        self.workers_peak_mb = 0.0
        self.worker_peak_mb = 0.0
        self._stop = asyncio.Event()

    async def run(self) -> None:
        vnvs = psutil.Process(self.mesh.pids()["vnvs"])
        while not self._stop.is_set():
            sizes = []
            for child in vnvs.children():
                try:
                    sizes.append(child.memory_info().rss / MIB)
                except psutil.Error:
                    continue
            self.workers_peak_mb = max(self.workers_peak_mb, sum(sizes))
            self.worker_peak_mb = max([self.worker_peak_mb, *sizes])
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.interval_s)

    def stop(self) -> None:
        self._stop.set()


def rss_mb(pid: int) -> float:
    return psutil.Process(pid).memory_info().rss / MIB


async def many_large(ctx: Context) -> None:
    count = int(os.environ.get("BENCH_MANY_LARGE_COUNT", "100"))
    urls = restart_with_metrics(ctx.mesh)
    body = sized_request(10 * MIB, 2000)
    pids = ctx.mesh.pids()
    baseline = {name: rss_mb(pid) for name, pid in pids.items()}
    sampler = Sampler(ctx.mesh)
    sampling = asyncio.create_task(sampler.run())
    started = time.perf_counter()

    async def submit() -> tuple[str, float]:
        began = time.perf_counter()
        reply = await ctx.api.Submit(valuation_pb2.SubmitRequest(xml=body), timeout=600)
        return reply.request_id, time.perf_counter() - began

    submitted = await asyncio.gather(*(submit() for _ in range(count)), return_exceptions=True)
    refused = [item for item in submitted if isinstance(item, BaseException)]
    ids = [item[0] for item in submitted if not isinstance(item, BaseException)]
    finals: dict[str, int] = {}
    while len(finals) < len(ids) and time.perf_counter() - started < 3600:
        for request_id in [rid for rid in ids if rid not in finals]:
            status = await ctx.api.GetStatus(valuation_pb2.GetStatusRequest(request_id=request_id), timeout=60)
            if status.status in TERMINAL:
                finals[request_id] = status.status
        await asyncio.sleep(0.5)
    elapsed = time.perf_counter() - started
    sampler.stop()
    await sampling
    metrics = await scrape(urls)
    succeeded = sum(1 for status in finals.values() if status == valuation_pb2.REQUEST_STATUS_SUCCEEDED)
    submit_s = sorted(item[1] for item in submitted if not isinstance(item, BaseException))
    figures = ctx.figures
    figures.update({
        "requests": float(count), "payload_mib": len(body) / MIB, "succeeded": float(succeeded),
        "failed": float(len(finals) - succeeded), "refused": float(len(refused)),
        "unfinished": float(len(ids) - len(finals)), "end_to_end_s": elapsed,
        "submit_p50_ms": submit_s[len(submit_s) // 2] * 1000 if submit_s else float("nan"),
        "submit_max_ms": submit_s[-1] * 1000 if submit_s else float("nan"),
        "tasks": float(count * 2000),
        "hydration_workers_peak_mb": sampler.workers_peak_mb, "hydration_worker_peak_mb": sampler.worker_peak_mb,
    })
    for name, pid in pids.items():
        figures[f"rss_growth_mb_{name}"] = peak_rss_mb(pid) - baseline[name]
        prefix = "vn_gateway" if name == "gateway" else "vnas" if name.startswith("vnas") else name
        figures[f"max_loop_lag_ms_{name}"] = metrics[name].get(f"{prefix}_event_loop_lag_max_seconds", -0.001) * 1000
    vnvs = metrics["vnvs"]
    peak_inflight = vnvs.get("vnvs_inflight_bytes_peak", 0.0)
    figures["vnvs_inflight_peak_mib"] = peak_inflight / MIB
    figures["vnvs_inflight_budget_mib"] = vnvs.get("vnvs_inflight_bytes_budget", 0.0) / MIB
    figures["vnvs_admission_deferred"] = vnvs.get("vnvs_admission_deferred_total", 0.0)
    if peak_inflight:
        # Memory one admitted payload byte costs in vnvs at its peak (the service process alone).
        figures["vnvs_factor"] = figures["rss_growth_mb_vnvs"] * MIB / peak_inflight
    # vnapi held every body at once (all were submitted together): its peak against all of them.
    figures["vnapi_rss_over_inflight_payload"] = peak_rss_mb(pids["vnapi"]) * MIB / (count * len(body))
    if refused or succeeded != count:
        print("many-large figures before failing:", figures, file=sys.stderr)
    if refused:
        raise RuntimeError(f"{len(refused)} submissions were refused: {refused[0]!r}")
    if succeeded != count:
        raise RuntimeError(f"only {succeeded} of {count} large requests succeeded ({len(finals)} finished)")
