"""What the fault tests share: a counting valuation script, waiting for outcomes, the one-terminal-event
check, and a chaos loop that kills and replaces service processes."""

from __future__ import annotations

import asyncio
import json
import random
import signal
import threading
import time
from collections import Counter
from pathlib import Path

import grpc
import redis.asyncio as redis
from lxml import etree

from tests.e2e.conftest import EXAMPLES
from tests.e2e.helpers import OPTIONS, Status, write_script
from vn.v1 import valuation_pb2, valuation_pb2_grpc
from vncommon import keys
from vncommon.localmesh import LocalMesh

TERMINAL_STATUSES = {"succeeded", "failed", "cancelled"}
TERMINAL = (Status.REQUEST_STATUS_SUCCEEDED, Status.REQUEST_STATUS_FAILED, Status.REQUEST_STATUS_CANCELLED)


def counting_script(directory: Path, log: Path, sleep_s: float = 0.0, name: str = "count.sh") -> Path:
    """The example pricer behind a wrapper that first appends `request group task attempt pid ppid` to
    `log` (one line per execution), then sleeps: the log says how often each task ran, and where."""
    pause = f"sleep {sleep_s}\n" if sleep_s else ""
    return write_script(directory, name,
                        f'echo "$VN_REQUEST_ID $VN_GROUP_INDEX $VN_TASK_ID $VN_ATTEMPT $$ $PPID" >> "{log}"\n'
                        f'{pause}exec "{EXAMPLES / "price.py"}" "$1"\n')


def log_lines(log: Path) -> list[list[str]]:
    if not log.exists():
        return []
    return [line.split() for line in log.read_text().splitlines() if line.strip()]


def executions(log: Path, request_id: str | None = None) -> Counter[tuple[str, str]]:
    """How many times each (group index, task id) ran, for one request or for all of them."""
    return Counter((g, t) for rid, g, t, *_ in log_lines(log) if request_id is None or rid == request_id)


def channel_to(address: str) -> tuple[grpc.aio.Channel, valuation_pb2_grpc.ValuationServiceStub]:
    channel = grpc.aio.insecure_channel(address, options=OPTIONS)
    return channel, valuation_pb2_grpc.ValuationServiceStub(channel)


async def submit(api: valuation_pb2_grpc.ValuationServiceStub, xml: bytes) -> str:
    reply = await api.Submit(valuation_pb2.SubmitRequest(xml=xml), timeout=10)
    return str(reply.request_id)


async def wait_for_end(api: valuation_pb2_grpc.ValuationServiceStub, request_id: str,
                       timeout: float = 60.0) -> valuation_pb2.GetStatusResponse:  # noqa: ASYNC109
    """Poll GetStatus until the request ended; raise if it never does (a lost request)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            status = await api.GetStatus(valuation_pb2.GetStatusRequest(request_id=request_id), timeout=5)
            if status.status in TERMINAL:
                return status
        except grpc.aio.AioRpcError as exc:
            if exc.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                raise
        if time.monotonic() > deadline:
            raise AssertionError(f"request {request_id} did not end within {timeout:.0f}s")
        await asyncio.sleep(0.05)


async def results(api: valuation_pb2_grpc.ValuationServiceStub, request_id: str) -> bytes:
    reply = await api.GetResults(valuation_pb2.GetResultsRequest(request_id=request_id), timeout=10)
    return bytes(reply.response_xml)


def project_bytes(response_xml: bytes) -> bytes:
    """The response's `project` subtree, serialised: the response less its requestId attribute."""
    project = etree.fromstring(response_xml).find("project")
    assert project is not None, response_xml[:200]
    return bytes(etree.tostring(project))


async def event_statuses(client: redis.Redis, request_id: str) -> list[str]:
    raw = await client.lrange(keys.request_events_key(request_id), 0, -1)
    return [json.loads(item)["status"] for item in raw]


async def lifecycle_statuses(client: redis.Redis, request_id: str) -> list[str]:
    """This request's statuses on the shared lifecycle stream, in order."""
    found = []
    for _entry_id, fields in await client.xrange(keys.LIFECYCLE_STREAM):
        if fields.get(b"requestId") == request_id.encode():
            found.append(fields[b"status"].decode())
    return found


# On a Redis Cluster the lifecycle stream is appended after the step that ended the request (another
# slot: vncommon.slotpipe), so a reader that saw the terminal status may look before the event landed.
STREAM_LAG_S = 5.0


async def assert_one_terminal_event(client: redis.Redis, request_id: str, status: str) -> None:
    """Exactly one terminal event, the expected one and the last, in the request's list and on the stream."""
    deadline = time.monotonic() + STREAM_LAG_S
    streamed = await lifecycle_statuses(client, request_id)
    while status not in streamed and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        streamed = await lifecycle_statuses(client, request_id)
    for where, statuses in (("events list", await event_statuses(client, request_id)),
                            ("lifecycle stream", streamed)):
        terminal = [s for s in statuses if s in TERMINAL_STATUSES]
        assert terminal == [status], f"{request_id} {where}: {statuses}"
        assert statuses[-1] == status, f"{request_id} {where}: {statuses}"


class Chaos:
    """A thread that keeps `count` processes of `kind` alive (replacing any that died) and, when
    `kill_every` is given, SIGKILLs a random one of them every so often and starts a replacement."""

    def __init__(self, mesh: LocalMesh, kind: str, names: list[str],
                 kill_every: tuple[float, float] | None = None, seed: int = 7, **env: str) -> None:
        self.mesh = mesh
        self.kind = kind
        self.names = list(names)
        self.kill_every = kill_every
        self.env = env
        self.kills = 0
        self.respawns = 0
        self._random = random.Random(seed)
        self._stop = threading.Event()
        self._serial = 0
        self._thread = threading.Thread(target=self._loop, name=f"chaos-{kind}", daemon=True)

    def __enter__(self) -> Chaos:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def _replace(self, name: str) -> None:
        self.names.remove(name)
        self._serial += 1
        fresh = f"{name.split('~')[0]}~{self._serial}"
        self.mesh.start(fresh, self.kind, self.mesh.fresh_ports(1)[0], wait=False, **self.env)
        self.names.append(fresh)

    def _loop(self) -> None:
        next_kill = self._next()
        while not self._stop.wait(0.05):
            for name in list(self.names):
                process = self.mesh.processes.get(name)
                if process is None or process.poll() is not None:
                    self.mesh.processes.pop(name, None)
                    self._replace(name)
                    self.respawns += 1
            if self.kill_every is not None and time.monotonic() >= next_kill:
                victim = self._random.choice(self.names)
                if victim in self.mesh.processes:
                    self.mesh.kill(victim, signal.SIGKILL)
                    self.kills += 1
                    self._replace(victim)
                next_kill = self._next()

    def _next(self) -> float:
        low, high = self.kill_every or (0.0, 0.0)
        return time.monotonic() + self._random.uniform(low, high)
