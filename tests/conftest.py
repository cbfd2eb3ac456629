"""Shared fixtures: one real redis-server per test session on a free loopback port, flushed per test.

With `--redis-mode=cluster` (`make test-cluster`) the session's Redis is a real 6-node Redis Cluster
instead, and every fixture built on `redis_server` (clients, service settings, mesh environments)
follows it: the same suites then run against the cluster.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import redis.asyncio as redis
from redis.asyncio.cluster import RedisCluster

from vncommon.localcluster import LocalCluster
from vncommon.localmesh import free_port, start_redis
from vncommon.redisconn import create_redis

ROOT = Path(__file__).resolve().parent.parent


class RedisServer:
    """A private redis-server process; tests may stop and restart it (same port, same AOF dir)."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None

    mode = "single"
    stream_shards = 1  # --stream-shards: STREAM_SHARDS of the services the tests start

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def env(self) -> dict[str, str]:
        """What a service process needs to reach this Redis."""
        return {"REDIS_URL": self.url, "REDIS_MODE": self.mode, "STREAM_SHARDS": str(self.stream_shards)}

    def client(self) -> redis.Redis:
        return create_redis(self.url, mode=self.mode)

    def start(self, appendonly: bool = False) -> None:
        self.process = start_redis(self.workdir, self.port, appendonly=appendonly)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


class WholeClusterClient(RedisCluster):
    """The cluster client tests use: KEYS and DBSIZE look at every master, as on one Redis (redis-py
    sends them to one random node)."""

    async def keys(self, pattern: Any = "*", **kwargs: Any) -> Any:
        return [key async for key in self.scan_iter(match=pattern)]

    async def dbsize(self, **kwargs: Any) -> Any:
        sizes: Any = await self.execute_command("DBSIZE", target_nodes=RedisCluster.PRIMARIES)
        return sum(sizes.values()) if isinstance(sizes, dict) else int(sizes)


class ClusterServer(RedisServer):
    """The session's Redis as a local Redis Cluster (3 masters, 3 replicas): `--redis-mode=cluster`."""

    mode = "cluster"

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        self.cluster = LocalCluster(workdir)

    @property
    def url(self) -> str:
        return self.cluster.url

    def start(self, appendonly: bool = False) -> None:
        self.cluster.start()

    def stop(self) -> None:
        self.cluster.stop()

    def client(self) -> redis.Redis:
        return cast(redis.Redis, WholeClusterClient.from_url(self.url))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--redis-mode", choices=("single", "cluster"), default="single",
                     help="run against one redis-server (default) or a local 6-node Redis Cluster")
    parser.addoption("--stream-shards", type=int, default=1, help="STREAM_SHARDS of the services tests start")


@pytest.fixture(scope="session")
def redis_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    workdir = tmp_path_factory.mktemp("redis")
    server = ClusterServer(workdir) if request.config.getoption("--redis-mode") == "cluster" else RedisServer(workdir)
    server.stream_shards = request.config.getoption("--stream-shards")
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def redis_client(redis_server: RedisServer) -> AsyncIterator[redis.Redis]:
    client = redis_server.client()
    await client.flushall()
    yield client
    await client.aclose()


@pytest.fixture
def base_env(redis_server: RedisServer) -> dict[str, str]:
    """Environment for service processes started by tests."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VN", "REDIS", "HYDRATION", "GRPC"))}
    env.update({**redis_server.env, "LOG_LEVEL": "WARNING", "PYTHONPATH": str(ROOT)})
    return env


async def wait_until(
    check: Callable[[], Awaitable[bool]], timeout: float = 10.0, interval: float = 0.02  # noqa: ASYNC109
) -> None:
    """Poll `check` until it is true; fail the test with a clear message if it never is."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        if await check():
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)
