"""A real Redis Cluster on loopback: 3 masters and 3 replicas as local redis-server processes.

Used by the cluster test suites (`make test-cluster`) and the cluster benchmarks. Each node has its own
directory (its nodes.conf) and its own client and bus ports; `redis-cli --cluster create` assigns the
slots and the replicas. Nodes can be killed (SIGKILL) and restarted to exercise failover.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from vncommon.localmesh import free_ports, wait_for_port

NODES = 6
# A failed master's replica is promoted after this long without an answer (Redis' default is 15 s).
NODE_TIMEOUT_MS = 1500
READY_TIMEOUT_S = 30.0


def _cli(port: int, *args: str, timeout: float = 10.0) -> str:
    done = subprocess.run([shutil.which("redis-cli") or "redis-cli", "-p", str(port), *args],
                          capture_output=True, text=True, timeout=timeout, check=False)
    return done.stdout


@dataclass
class LocalCluster:
    """A 6-node cluster under `workdir`; `start()` returns once every slot is served (`cluster_state:ok`)."""

    workdir: Path
    node_timeout_ms: int = NODE_TIMEOUT_MS
    ports: list[int] = field(default_factory=list)
    bus_ports: list[int] = field(default_factory=list)
    processes: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        """Any node's URL: the cluster client discovers the others from it."""
        return f"redis://127.0.0.1:{self.ports[0]}/0"

    def start(self) -> None:
        chosen = free_ports(NODES * 2)
        self.ports, self.bus_ports = chosen[:NODES], chosen[NODES:]
        for port in self.ports:
            self.start_node(port)
        addresses = [f"127.0.0.1:{port}" for port in self.ports]
        created = subprocess.run(
            [shutil.which("redis-cli") or "redis-cli", "--cluster", "create", *addresses,
             "--cluster-replicas", "1", "--cluster-yes"],
            capture_output=True, text=True, timeout=60, check=False)
        if created.returncode != 0:
            self.stop()
            raise RuntimeError(f"redis-cli --cluster create failed: {created.stdout[-2000:]}{created.stderr[-2000:]}")
        self.wait_ready()

    def start_node(self, port: int) -> None:
        """Start (or restart, keeping its nodes.conf) the node on `port`."""
        node_dir = self.workdir / f"node-{port}"
        node_dir.mkdir(parents=True, exist_ok=True)
        bus_port = self.bus_ports[self.ports.index(port)]
        process = subprocess.Popen(
            [shutil.which("redis-server") or "redis-server", "--port", str(port), "--bind", "127.0.0.1",
             "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-port", str(bus_port),
             "--cluster-node-timeout", str(self.node_timeout_ms),
             # A replica on a busy machine may lag its master's pings; it must still take over.
             "--cluster-replica-validity-factor", "0", "--dir", str(node_dir), "--save", "",
             "--appendonly", "no", "--protected-mode", "no", "--logfile", str(node_dir / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.processes[port] = process
        wait_for_port(port, process, f"redis cluster node {port}")

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> None:
        """Until every live node reports cluster_state:ok and agrees there are 3 masters serving slots."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            live = [port for port, process in self.processes.items() if process.poll() is None]
            if all("cluster_state:ok" in _cli(port, "cluster", "info") for port in live) and \
                    len(self.masters()) == NODES // 2:
                return
            time.sleep(0.1)
        raise RuntimeError(f"the redis cluster is not ready after {timeout:.0f}s")

    def masters(self) -> list[int]:
        """Ports of the live masters that serve slots, as the first live node sees the cluster."""
        live = [port for port, process in self.processes.items() if process.poll() is None]
        if not live:
            return []
        found = []
        for line in _cli(live[0], "cluster", "nodes").splitlines():
            parts = line.split()
            if len(parts) > 8 and "master" in parts[2] and "fail" not in parts[2]:
                port = int(parts[1].split("@")[0].rsplit(":", 1)[1])
                if port in live:
                    found.append(port)
        return sorted(found)

    def master_of(self, key: str) -> int:
        """The port of the live master serving `key`'s slot."""
        live = [port for port, process in self.processes.items() if process.poll() is None]
        slot = int(_cli(live[0], "cluster", "keyslot", key).strip())
        for line in _cli(live[0], "cluster", "nodes").splitlines():
            parts = line.split()
            if len(parts) > 8 and "master" in parts[2] and "fail" not in parts[2]:
                for served in parts[8:]:
                    low, _, high = served.partition("-")
                    if low.isdigit() and int(low) <= slot <= int(high or low):
                        return int(parts[1].split("@")[0].rsplit(":", 1)[1])
        raise RuntimeError(f"no live master serves slot {slot}")

    def wait_replicated(self, port: int, timeout_ms: int = 3000) -> int:
        """WAIT until the master's replica acknowledged its writes so far; how many replicas did."""
        answer = _cli(port, "wait", "1", str(timeout_ms), timeout=timeout_ms / 1000 + 5).strip()
        return int(answer) if answer.isdigit() else 0

    def kill(self, port: int) -> None:
        """SIGKILL one node: its replica takes over after the node timeout."""
        process = self.processes[port]
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)

    def flush(self) -> None:
        for port in self.masters():
            _cli(port, "flushall")

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        self.processes.clear()
