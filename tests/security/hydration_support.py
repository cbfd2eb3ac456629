"""What the hostile-input tests share: hostile requests, a service's measured memory, and the checks that
the service still answers a normal request in time afterwards."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil

from tests.conftest import RedisServer
from tests.e2e.conftest import TEST_ENV
from tests.e2e.helpers import Status, simple_request
from tests.faults.support import submit, wait_for_end
from vn.v1 import valuation_pb2, valuation_pb2_grpc
from vncommon.localmesh import LocalMesh, free_port

# What a normal request may take end to end, while or after something hostile ran.
NORMAL_LATENCY_S = 2.0
WORKER_MODULE = "vnvs.hydration.worker"
IN_PROCESS_PRICER = "python:tests.vnas.pricers:flat_price"


@contextmanager
def running_mesh(redis_server: RedisServer, log_dir: Path, workers: int = 1, **env: str) -> Iterator[LocalMesh]:
    """vnvs, `workers` vnas and vnapi as real processes with `env` on top of the test settings; all stopped
    when the block ends."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("VN", "REDIS", "HYDRATION", "GRPC"))}
    base.update({"REDIS_URL": redis_server.url, **TEST_ENV, "LOG_LEVEL": "INFO", **env})
    if "VNAS_SCRIPT" not in env:  # an in-process pricer: a normal request's latency is then the mesh's own
        del base["VNAS_SCRIPT"]
        base["VNAS_EXECUTOR"] = IN_PROCESS_PRICER
    log_dir.mkdir(parents=True, exist_ok=True)
    mesh = LocalMesh(env=base, log_dir=log_dir)
    try:
        mesh.start("vnvs", "vnvs", mesh.vnvs_port)
        for index in range(workers):
            mesh.start(f"vnas{index}", "vnas", free_port())
        mesh.start("vnapi", "vnapi", mesh.vnapi_port, VNAPI_CONSUMER_NAME="vnapi")
        yield mesh
    except RuntimeError as exc:
        raise RuntimeError(f"{exc}\n{mesh.log_tail()}") from None
    finally:
        mesh.stop()


def hydration_workers(pid: int) -> list[psutil.Process]:
    """The hydration worker processes of the vnvs process `pid`."""
    found = []
    for child in psutil.Process(pid).children():
        try:
            if WORKER_MODULE in " ".join(child.cmdline()):
                found.append(child)
        except psutil.NoSuchProcess:
            continue
    return found


class WorkerCpu:
    """Samples the CPU seconds each hydration worker of a vnvs has used, keeping the last value seen for
    workers that are gone (killed at their budget)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.seen: dict[int, float] = {}

    def sample(self) -> float:
        """CPU seconds of all workers seen so far (the current ones read now)."""
        for worker in hydration_workers(self.pid):
            try:
                times = worker.cpu_times()
            except psutil.NoSuchProcess:
                continue
            self.seen[worker.pid] = times.user + times.system
        return sum(self.seen.values())

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.sample()
            await asyncio.sleep(0.05)

    def busiest(self) -> float:
        return max(self.seen.values(), default=0.0)


def vnvs_pid(mesh: LocalMesh) -> int:
    return mesh.processes["vnvs"].pid


def failure(status: valuation_pb2.GetStatusResponse) -> dict[str, str]:
    assert status.status == Status.REQUEST_STATUS_FAILED, status
    detail = json.loads(status.failure_detail)
    assert isinstance(detail, dict)
    return {str(k): str(v) for k, v in detail.items()}


async def run_to_end(api: valuation_pb2_grpc.ValuationServiceStub, xml: bytes, timeout: float = 60.0  # noqa: ASYNC109
                     ) -> tuple[valuation_pb2.GetStatusResponse, float]:
    """Submit `xml` and wait for its end: (final status, seconds from submit to the end being seen)."""
    started = time.monotonic()
    request_id = await submit(api, xml)
    status = await wait_for_end(api, request_id, timeout=timeout)
    return status, time.monotonic() - started


async def normal_request_latency(api: valuation_pb2_grpc.ValuationServiceStub) -> float:
    """Seconds a small, normal two-group request takes as a sync Submit; it must succeed."""
    started = time.monotonic()
    reply = await api.Submit(valuation_pb2.SubmitRequest(xml=simple_request(groups=2, tasks=2), sync=True),
                             timeout=30)
    elapsed = time.monotonic() - started
    assert reply.status == Status.REQUEST_STATUS_SUCCEEDED, reply.failure_detail
    return elapsed


async def assert_still_serves(api: valuation_pb2_grpc.ValuationServiceStub) -> None:
    elapsed = await normal_request_latency(api)
    assert elapsed < NORMAL_LATENCY_S, f"a normal request took {elapsed:.2f}s afterwards"


def project(body: str, reference: str = "", declarations: str = "") -> bytes:
    """A request whose project holds `reference` data, then `body` (its groups)."""
    return (f'<?xml version="1.0"?>{declarations}<vnml><project name="hostile">{reference}{body}</project>'
            f"</vnml>").encode()


def one_valuation(inner: str, use: str = "") -> str:
    """One group with one valuation holding `inner`."""
    attribute = f' use="{use}"' if use else ""
    return f'<group name="g"><valuation name="v"{attribute}>{inner}</valuation></group>'


def portfolio(items: int, inner: str = "") -> str:
    """A portfolio of `items` instruments (the thousands of nodes a runaway expression multiplies)."""
    return "<portfolio>" + f'<instrument name="i">{inner}</instrument>' * items + "</portfolio>"
