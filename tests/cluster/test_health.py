"""Health follows Redis: NOT_SERVING while the service cannot reach it, SERVING again once it can."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.conftest import ROOT, RedisServer, free_port

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


async def _health(port: int) -> int:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        try:
            reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=1)
        except grpc.aio.AioRpcError:
            return -1
        return int(reply.status)


async def _until(port: int, status: int, timeout: float = 30.0) -> None:  # noqa: ASYNC109
    deadline = asyncio.get_running_loop().time() + timeout
    while await _health(port) != status:
        assert asyncio.get_running_loop().time() < deadline, f"health never became {status}"
        await asyncio.sleep(0.1)


async def test_vnvs_reports_not_serving_while_redis_is_away(base_env: dict[str, str], tmp_path: Path) -> None:
    own = RedisServer(tmp_path)
    own.start()
    port = free_port()
    env = {**base_env, "REDIS_URL": own.url, "REDIS_MODE": "single", "GRPC_PORT": str(port),
           "LOG_LEVEL": "INFO"}
    process = await asyncio.create_subprocess_exec(sys.executable, "-m", "vnvs", env=env, cwd=ROOT,
                                                   stdout=asyncio.subprocess.DEVNULL,
                                                   stderr=asyncio.subprocess.PIPE)
    try:
        await _until(port, SERVING)
        own.stop()
        await _until(port, NOT_SERVING)
        own.start()
        await _until(port, SERVING)
    finally:
        process.terminate()
        _, stderr = await asyncio.wait_for(process.communicate(), 30)
        own.stop()
    log = stderr.decode()
    assert log.count("health NOT_SERVING until it does") == 1 and log.count("health SERVING") == 1, log[-2000:]
