"""Shared fixtures: one real redis-server per test session on a free loopback port, flushed per test."""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest
import redis.asyncio as redis

from vncommon.localmesh import free_port, start_redis

ROOT = Path(__file__).resolve().parent.parent


class RedisServer:
    """A private redis-server process; tests may stop and restart it (same port, same AOF dir)."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, appendonly: bool = False) -> None:
        self.process = start_redis(self.workdir, self.port, appendonly=appendonly)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def redis_client(redis_server: RedisServer) -> AsyncIterator[redis.Redis]:
    client = redis.Redis.from_url(redis_server.url)
    await client.flushall()
    yield client
    await client.aclose()


@pytest.fixture
def base_env(redis_server: RedisServer) -> dict[str, str]:
    """Environment for service processes started by tests."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VN", "REDIS", "HYDRATION", "GRPC"))}
    env.update({"REDIS_URL": redis_server.url, "LOG_LEVEL": "WARNING", "PYTHONPATH": str(ROOT)})
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
