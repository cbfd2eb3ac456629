"""Shared by the security tests: a mesh of real processes, raw HTTP over a socket, every RPC of a service
called generically, and the peak RSS of a process as the kernel measured it."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import message_factory
from google.protobuf.descriptor import ServiceDescriptor

from tests.e2e.conftest import TEST_ENV
from vn.v1 import orchestrator_pb2, task_pb2, valuation_pb2
from vncommon.localmesh import LocalMesh, free_port

REST_TOKEN = "rest-token-0123456789"
GRPC_TOKENS = ("grpc-token-primary-0123", "grpc-token-second-4567")
MAX_MESSAGE = 12 * 1024 * 1024
# A refusal is decided before any work: far below this even on a loaded two-core machine.
REFUSAL_BOUND_S = 1.0
# A service process of this mesh stays well below this however it is probed.
RSS_BOUND_MIB = 400.0

VALUATION = valuation_pb2.DESCRIPTOR.services_by_name["ValuationService"]
ORCHESTRATOR = orchestrator_pb2.DESCRIPTOR.services_by_name["OrchestratorService"]
TASKS = task_pb2.DESCRIPTOR.services_by_name["TaskService"]

TASK_XML = (b'<vnml><project name="eod"><group name="price"><valuation name="bond">'
            b'<instrument name="I1"><coupon>0.04</coupon><maturityYears>2</maturityYears>'
            b'<notional>1000000</notional></instrument><market><yield>0.0415</yield></market>'
            b'<analytics><price><amount/></price></analytics></valuation></group></project></vnml>')


def mesh_env(redis_url: str, **extra: str) -> dict[str, str]:
    """The environment of every service: this machine's, less anything of ours, plus test timings."""
    ours = ("VN", "REDIS", "HYDRATION", "GRPC", "GATEWAY")
    env = {k: v for k, v in os.environ.items() if not k.startswith(ours)}
    env.update({"REDIS_URL": redis_url, **TEST_ENV, **extra})
    return env


@dataclass
class RunningMesh:
    local: LocalMesh
    vnas_port: int

    def services(self) -> list[tuple[ServiceDescriptor, str]]:
        """Each gRPC service of the mesh with the address of the process serving it."""
        return [(VALUATION, self.local.vnapi_address), (ORCHESTRATOR, f"127.0.0.1:{self.local.vnvs_port}"),
                (TASKS, f"127.0.0.1:{self.vnas_port}")]

    @property
    def addresses(self) -> dict[str, str]:
        """gRPC address of each service, by the service's full name."""
        return {service.full_name: address for service, address in self.services()}

    def log(self, name: str) -> str:
        assert self.local.log_dir is not None
        return (self.local.log_dir / f"{name}.log").read_text(errors="replace")


@contextmanager
def running_mesh(redis_url: str, log_dir: Path, **env: str) -> Iterator[RunningMesh]:
    """vnvs, one vnas, vnapi and the gateway as processes; `env` is added to every one's environment."""
    mesh = LocalMesh(env=mesh_env(redis_url, **env), log_dir=log_dir)
    vnas_port = free_port()
    try:
        mesh.start_all(vnas_ports=[vnas_port])
    except RuntimeError as exc:
        mesh.stop()
        raise RuntimeError(f"{exc}\n{mesh.log_tail()}") from None
    try:
        yield RunningMesh(mesh, vnas_port)
    finally:
        mesh.stop()


@dataclass(frozen=True)
class Rpc:
    path: str
    request_type: Any
    streaming: bool


def rpcs_of(service: ServiceDescriptor) -> list[Rpc]:
    """Every method of `service`, from its descriptor: a method added later is covered as well."""
    return [Rpc(f"/{service.full_name}/{method.name}", message_factory.GetMessageClass(method.input_type),
                method.server_streaming) for method in service.methods]


async def call(channel: grpc.aio.Channel, rpc: Rpc, request: Any = None,
               metadata: tuple[tuple[str, str], ...] | None = None) -> grpc.aio.AioRpcError | None:
    """Call `rpc` (an empty request unless one is given); the error it ended with, None on success."""
    message = request if request is not None else rpc.request_type()
    try:
        if rpc.streaming:
            stream = channel.unary_stream(rpc.path, request_serializer=type(message).SerializeToString)(
                message, metadata=metadata, timeout=5)
            async for _ in stream:
                break
            stream.cancel()
        else:
            await channel.unary_unary(rpc.path, request_serializer=type(message).SerializeToString)(
                message, metadata=metadata, timeout=5)
    except grpc.aio.AioRpcError as exc:
        return exc
    return None


@dataclass(frozen=True)
class RawAnswer:
    status: int
    headers: dict[str, str]
    body: bytes
    seconds: float


def raw_request(method: str, path: str, headers: list[tuple[bytes, bytes]], body: bytes = b"") -> bytes:
    """An HTTP/1.1 request as bytes, header values exactly as given (no client gets to refuse them)."""
    lines = [f"{method} {path} HTTP/1.1".encode(), b"Host: 127.0.0.1", b"Connection: close",
             f"Content-Length: {len(body)}".encode(), *(name + b": " + value for name, value in headers)]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


async def send_raw(port: int, request: bytes, timeout_s: float = 10.0) -> RawAnswer:
    """Write `request` to 127.0.0.1:`port` and read the answer until the server closes."""
    started = time.perf_counter()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        async with asyncio.timeout(timeout_s):
            data = await reader.read()
    finally:
        writer.close()
        await writer.wait_closed()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:])}
    return RawAnswer(int(lines[0].split()[1]), headers, body, time.perf_counter() - started)
