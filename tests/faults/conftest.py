"""A mesh of real processes for fault tests, started service by service so tests can add, kill,
stop and replace any of them; every process a test starts is stopped when the test ends."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis.asyncio as redis

from tests.conftest import RedisServer
from tests.e2e.conftest import TEST_ENV
from vncommon.localmesh import LocalMesh, free_port

FaultMeshFactory = Callable[..., LocalMesh]


@pytest.fixture
def fault_mesh(redis_server: RedisServer, redis_client: redis.Redis, tmp_path: Path) -> Iterator[FaultMeshFactory]:
    """`fault_mesh(workers=2, redis_url=None, **env)`: vnvs, `workers` vnas, vnapi (consumer `vnapi`).

    Depends on `redis_client` so the session Redis is flushed first: no pending entry of an earlier
    test's dead worker can leak into this one.
    """
    meshes: list[LocalMesh] = []

    def factory(workers: int = 2, redis_url: str | None = None, **env: str) -> LocalMesh:
        base = {k: v for k, v in os.environ.items() if not k.startswith(("VN", "REDIS", "HYDRATION", "GRPC"))}
        base.update({**redis_server.env, **TEST_ENV, **env})
        if redis_url:
            base.update({"REDIS_URL": redis_url, "REDIS_MODE": "single"})
        logs = tmp_path / f"faultmesh{len(meshes)}"
        logs.mkdir()
        mesh = LocalMesh(env=base, log_dir=logs)
        meshes.append(mesh)
        try:
            mesh.start("vnvs", "vnvs", mesh.vnvs_port)
            for index in range(workers):
                mesh.start(f"vnas{index}", "vnas", mesh.fresh_ports(1)[0])
            mesh.start("vnapi", "vnapi", mesh.vnapi_port, VNAPI_CONSUMER_NAME="vnapi")
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}\n{mesh.log_tail()}") from None
        return mesh

    yield factory
    for mesh in meshes:
        for process in mesh.processes.values():  # a stopped (SIGSTOP) process must see its SIGTERM
            if process.poll() is None:
                process.send_signal(signal.SIGCONT)
        mesh.stop()


@pytest.fixture
def aof_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A private redis-server with AOF on, which a test may stop and start again (same port, same data)."""
    workdir = tmp_path / "aof-redis"
    workdir.mkdir()
    server = RedisServer(workdir)
    server.start(appendonly=True)
    yield server
    server.stop()


__all__ = ["FaultMeshFactory", "free_port"]
