"""`make soak` / `python -m bench.soak [--requests N] [--seconds S]`: the mesh under random SIGKILLs.

A private redis-server and a mesh of 2 vnvs, 2 vnapi and 3 vnas run a deterministic valuation script.
First every distinct request shape runs once undisturbed (the reference figures). Then N requests are
submitted, paced over the first part of the chaos window, while a chaos loop SIGKILLs a random service
process every 0.5-1.5 s and restarts it on the same port. The chaos stops once every request ended or
after S seconds; every request must then end within a deadline. Printed: requests submitted, succeeded,
failed, lost (never ended), wrong (succeeded with figures other than the reference), terminal events
other than exactly one, and tasks executed more than once (from the script's execution log).
Exit status 1 if any request was lost, failed, had the wrong result or not exactly one terminal event.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import stat
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import redis.asyncio as redis
from lxml import etree

from bench.mesh import private_redis
from bench.requests import chained_request
from vn.v1 import valuation_pb2, valuation_pb2_grpc
from vncommon import keys
from vncommon.localmesh import ROOT, LocalMesh, free_port
from vncommon.state import TERMINAL_PROTO, is_terminal

PRICE_SCRIPT = ROOT / "examples" / "price.py"
MAX_MESSAGE = 12 * 1024 * 1024
OPTIONS = [("grpc.max_send_message_length", MAX_MESSAGE), ("grpc.max_receive_message_length", MAX_MESSAGE)]
SHAPES = [(1, 3), (2, 2), (2, 4), (3, 2), (1, 6), (3, 3)]  # (groups, tasks per group)
END_DEADLINE_S = 90.0
# Short timings so that deaths are noticed within seconds. Every lost delivery counts against a task's
# budget (MAX_TASK_RETRIES), and here any worker may die several times under one task, so it is raised:
# the soak measures lost and wrong results, not the retry budget.
SOAK_ENV = {
    "LOG_LEVEL": "WARNING",
    "DEFAULT_BLOCK_MS": "500",
    "VNVS_LEASE_MS": "1500",
    "VNVS_RECOVERY_INTERVAL_MS": "300",
    "VNVS_RETRY_BASE_MS": "50",
    "VNVS_RETRY_CAP_MS": "500",
    "VNAS_CLAIM_IDLE_MS": "1500",
    "VNAPI_INGEST_CLAIM_IDLE_MS": "1000",
    "VNAPI_ORCHESTRATE_TIMEOUT_MS": "3000",
    "MAX_TASK_RETRIES": "10",
    "VNAS_CONCURRENCY": "4",
}
SERVICES = {"vnvs": "vnvs", "vnvs2": "vnvs", "vnapi": "vnapi", "vnapi2": "vnapi",
            "vnas0": "vnas", "vnas1": "vnas", "vnas2": "vnas"}


def counting_script(directory: Path, log: Path) -> Path:
    """The example pricer behind a wrapper that appends `request group task attempt` per execution."""
    path = directory / "soak-price.sh"
    path.write_text("#!/bin/sh\n"
                    f'echo "$VN_REQUEST_ID $VN_GROUP_INDEX $VN_TASK_ID $VN_ATTEMPT" >> "{log}"\n'
                    "sleep 0.1\n"
                    f'exec "{PRICE_SCRIPT}" "$1"\n')
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


class ChaosMesh:
    """The mesh, each service on a fixed port, and a chaos thread that kills and restarts them."""

    def __init__(self, mesh: LocalMesh, seed: int) -> None:
        self.mesh = mesh
        self.ports = {name: free_port() for name in SERVICES}
        self.ports["vnvs"], self.ports["vnapi"] = mesh.vnvs_port, mesh.vnapi_port
        self.kills: Counter[str] = Counter()
        self._random = random.Random(seed)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="chaos", daemon=True)

    def start_all(self) -> None:
        for name in ("vnvs", "vnvs2", "vnas0", "vnas1", "vnas2", "vnapi", "vnapi2"):
            self._start(name)

    @property
    def vnapi_addresses(self) -> list[str]:
        return [f"127.0.0.1:{self.ports[name]}" for name in ("vnapi", "vnapi2")]

    def _start(self, name: str) -> None:
        extra = {"VNAPI_CONSUMER_NAME": f"{name}-{uuid.uuid4().hex[:8]}"} if SERVICES[name] == "vnapi" else {}
        for _ in range(20):
            try:
                self.mesh.start(name, SERVICES[name], self.ports[name], **extra)
                return
            except RuntimeError:
                self.mesh.processes.pop(name, None)
                time.sleep(0.2)  # the port may still be held for a moment
        raise RuntimeError(f"cannot restart {name} on port {self.ports[name]}")

    def start_chaos(self) -> None:
        self._thread.start()

    def stop_chaos(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=60)

    def _loop(self) -> None:
        while not self._stop.wait(self._random.uniform(0.5, 1.5)):
            victim = self._random.choice(sorted(SERVICES))
            self.mesh.kill(victim, signal.SIGKILL)
            self.kills[victim] += 1
            self._start(victim)


@dataclass
class Outcome:
    submitted: int = 0
    succeeded: int = 0
    failed: int = 0
    lost: int = 0
    wrong: int = 0
    bad_terminal: int = 0
    duplicates: int = 0
    failures: list[str] = field(default_factory=list)


class Api:
    """Calls to whichever vnapi answers: the chaos may have either of them down at any moment."""

    def __init__(self, addresses: list[str]) -> None:
        self._channels = [grpc.aio.insecure_channel(a, options=OPTIONS) for a in addresses]
        self._stubs = [valuation_pb2_grpc.ValuationServiceStub(c) for c in self._channels]

    async def close(self) -> None:
        for channel in self._channels:
            await channel.close()

    async def call(self, method: str, message: object, deadline: float) -> object:
        attempt = 0
        while True:
            stub = self._stubs[attempt % len(self._stubs)]
            attempt += 1
            try:
                return await getattr(stub, method)(message, timeout=5)
            except grpc.aio.AioRpcError as exc:
                retriable = exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
                                           grpc.StatusCode.CANCELLED, grpc.StatusCode.INTERNAL)
                if not retriable or time.monotonic() > deadline:
                    raise
            await asyncio.sleep(0.1)

    async def submit(self, body: bytes, deadline: float) -> str:
        # The idempotency key makes a retried Submit (the first reply lost to a kill) the same request.
        message = valuation_pb2.SubmitRequest(xml=body, idempotency_key=uuid.uuid4().hex)
        reply = await self.call("Submit", message, deadline)
        return str(reply.request_id)  # type: ignore[attr-defined]

    async def wait_end(self, request_id: str, deadline: float) -> valuation_pb2.GetStatusResponse | None:
        while time.monotonic() < deadline:
            try:
                status = await self.call("GetStatus", valuation_pb2.GetStatusRequest(request_id=request_id), deadline)
            except grpc.aio.AioRpcError:
                return None
            assert isinstance(status, valuation_pb2.GetStatusResponse)
            if status.status in TERMINAL_PROTO:
                return status
            await asyncio.sleep(0.2)
        return None

    async def figures(self, request_id: str, deadline: float) -> list[list[str]]:
        reply = await self.call("GetResults", valuation_pb2.GetResultsRequest(request_id=request_id), deadline)
        root = etree.fromstring(reply.response_xml)  # type: ignore[attr-defined]
        return [[v.findtext("analytics/price/amount") or "" for v in group.findall("valuation")]
                for group in root.findall("project/group")]


async def terminal_events(client: redis.Redis, request_id: str) -> int:
    events = await client.lrange(keys.request_events_key(request_id), 0, -1)
    return sum(1 for raw in events if is_terminal(json.loads(raw)["status"]))


async def soak(redis_url: str, requests: int, seconds: float, workdir: Path, seed: int) -> Outcome:
    log = workdir / "executions.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VN", "REDIS", "HYDRATION", "GRPC"))}
    env.update({"REDIS_URL": redis_url, "VNAS_SCRIPT": str(counting_script(workdir, log)), **SOAK_ENV})
    logs = workdir / "logs"
    logs.mkdir()
    mesh = LocalMesh(env=env, log_dir=logs)
    chaos = ChaosMesh(mesh, seed)
    client = redis.Redis.from_url(redis_url)
    outcome = Outcome()
    try:
        chaos.start_all()
        api = Api(chaos.vnapi_addresses)
        try:
            bodies = [chained_request(groups, tasks) for groups, tasks in SHAPES]
            reference = []
            for body in bodies:
                request_id = await api.submit(body, time.monotonic() + 30)
                status = await api.wait_end(request_id, time.monotonic() + 60)
                if status is None or status.status != valuation_pb2.REQUEST_STATUS_SUCCEEDED:
                    raise RuntimeError(f"the undisturbed reference run failed:\n{mesh.log_tail()}")
                reference.append(await api.figures(request_id, time.monotonic() + 30))
            log.unlink(missing_ok=True)

            chaos.start_chaos()
            started = time.monotonic()
            pace = seconds / 2 / max(1, requests)
            submissions = []
            for index in range(requests):
                submissions.append(asyncio.create_task(
                    api.submit(bodies[index % len(bodies)], time.monotonic() + 60)))
                await asyncio.sleep(pace)
            ids = list(await asyncio.gather(*submissions))
            outcome.submitted = len(ids)
            chaos_end = started + seconds
            waits = [asyncio.create_task(api.wait_end(i, chaos_end + END_DEADLINE_S)) for i in ids]
            await asyncio.wait(waits, timeout=max(0.0, chaos_end - time.monotonic()))
            chaos.stop_chaos()
            statuses = await asyncio.gather(*waits)
            for index, (request_id, status) in enumerate(zip(ids, statuses, strict=True)):
                if status is None:
                    outcome.lost += 1
                    outcome.failures.append(f"{request_id}: lost")
                    continue
                if await terminal_events(client, request_id) != 1:
                    outcome.bad_terminal += 1
                    outcome.failures.append(f"{request_id}: not exactly one terminal event")
                if status.status == valuation_pb2.REQUEST_STATUS_FAILED:
                    outcome.failed += 1
                    outcome.failures.append(f"{request_id}: failed: {status.failure_detail}")
                    continue
                outcome.succeeded += 1
                if await api.figures(request_id, time.monotonic() + 30) != reference[index % len(bodies)]:
                    outcome.wrong += 1
                    outcome.failures.append(f"{request_id}: wrong figures")
        finally:
            await api.close()
    finally:
        chaos.stop_chaos()
        mesh.stop()
        await client.aclose()
    runs = Counter(tuple(line.split()[:3]) for line in log.read_text().splitlines()) if log.exists() else Counter()
    outcome.duplicates = sum(1 for count in runs.values() if count > 1)
    print(f"kills: {dict(sorted(chaos.kills.items()))} (total {sum(chaos.kills.values())})")
    print(f"tasks executed: {len(runs)} distinct, {sum(runs.values())} executions")
    return outcome


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=60, help="requests to submit (default 60)")
    parser.add_argument("--seconds", type=float, default=60.0,
                        help="longest chaos window; submissions are paced over its first half (default 60)")
    parser.add_argument("--seed", type=int, default=None, help="seed of the chaos loop (default: random)")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    print(f"soak: {args.requests} requests, chaos up to {args.seconds:.0f}s, seed {seed}")
    with private_redis() as redis_url, tempfile.TemporaryDirectory(prefix="vn-soak-") as workdir:
        outcome = asyncio.run(soak(redis_url, args.requests, args.seconds, Path(workdir), seed))
    print(f"requests submitted:          {outcome.submitted}")
    print(f"succeeded:                   {outcome.succeeded}")
    print(f"failed:                      {outcome.failed}")
    print(f"lost:                        {outcome.lost}")
    print(f"wrong result:                {outcome.wrong}")
    print(f"not one terminal event:      {outcome.bad_terminal}")
    print(f"tasks executed more than once: {outcome.duplicates}")
    for line in outcome.failures[:20]:
        print(f"  {line}", file=sys.stderr)
    bad = outcome.lost or outcome.wrong or outcome.failed or outcome.bad_terminal
    bad = bad or outcome.submitted != args.requests
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
