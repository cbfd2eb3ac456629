"""A real mesh for end-to-end tests: vnapi, vnvs, vnas workers and the gateway as separate processes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import ROOT, RedisServer, free_port

EXAMPLES = ROOT / "examples"


@dataclass
class Mesh:
    env: dict[str, str]
    vnapi_port: int = field(default_factory=free_port)
    vnvs_port: int = field(default_factory=free_port)
    http_port: int = field(default_factory=free_port)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    logs: Path = Path(".")

    @property
    def vnapi_address(self) -> str:
        return f"127.0.0.1:{self.vnapi_port}"

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def service_env(self, **extra: str) -> dict[str, str]:
        return {**self.env, "VNVS_ADDRESS": f"127.0.0.1:{self.vnvs_port}",
                "VNAPI_ADDRESS": self.vnapi_address, **extra}

    def start(self, name: str, module: str, port: int | None = None, **extra: str) -> subprocess.Popen[bytes]:
        env = self.service_env(**extra)
        if port is not None:
            env["HTTP_PORT" if module == "gateway" else "GRPC_PORT"] = str(port)
        log = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
        process = subprocess.Popen([sys.executable, "-m", module], env=env, stdout=log, stderr=log, cwd=ROOT)
        self.processes[name] = process
        if port is not None:
            wait_for_port(port, process, name)
        return process

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        process = self.processes.pop(name)
        process.send_signal(sig)
        process.wait(timeout=20)

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes.clear()

    def log_tail(self, lines: int = 40) -> str:
        out = []
        for path in sorted(self.logs.glob("*.log")):
            text = path.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {path.name}\n" + "\n".join(text))
        return "\n".join(out)


def wait_for_port(port: int, process: subprocess.Popen[bytes], name: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with code {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{name} does not listen on {port}")


MeshFactory = Callable[..., Mesh]


@pytest.fixture
def start_mesh(redis_server: RedisServer, tmp_path: Path) -> Iterator[MeshFactory]:
    """Start a whole mesh; keyword arguments become environment variables of every service."""
    meshes: list[Mesh] = []

    def factory(workers: int = 2, gateway: bool = True, **env: str) -> Mesh:
        base = {k: v for k, v in os.environ.items() if not k.startswith(("VN", "REDIS", "HYDRATION", "GRPC"))}
        base.update({"REDIS_URL": redis_server.url, "LOG_LEVEL": "INFO", "PYTHONPATH": str(ROOT),
                     "HYDRATION_FILE_ROOTS": str(EXAMPLES), "VNAS_SCRIPT": str(EXAMPLES / "price.py"),
                     "VNVS_RETRY_BASE_MS": "20", "VNVS_RETRY_CAP_MS": "200", "DEFAULT_BLOCK_MS": "500",
                     "VNAS_CLAIM_IDLE_MS": "2000", "SYNC_WAIT_TIMEOUT_MS": "30000"})
        base.update(env)
        logs = tmp_path / f"mesh{len(meshes)}"
        logs.mkdir()
        mesh = Mesh(env=base, logs=logs)
        meshes.append(mesh)
        mesh.start("vnvs", "vnvs", mesh.vnvs_port)
        for index in range(workers):
            mesh.start(f"vnas{index}", "vnas", free_port())
        mesh.start("vnapi", "vnapi", mesh.vnapi_port)
        if gateway:
            mesh.start("gateway", "gateway", mesh.http_port)
        return mesh

    yield factory
    for mesh in meshes:
        mesh.stop()
