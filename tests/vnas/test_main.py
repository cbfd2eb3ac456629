"""`python -m vnas` as a real process against the test Redis: serves, runs a task, stops on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path

import redis.asyncio as redis
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.conftest import ROOT, wait_until
from tests.vnas.conftest import dispatch, pending_count, price_of, read_updates, write_script
from vnas.servicer import SERVICE_NAME
from vncommon import keys
from vncommon.grpcutil import create_channel
from vncommon.service import EXIT_CONFIG


def log_lines(path: Path) -> list[dict[str, object]]:
    lines = []
    for raw in path.read_text().splitlines():
        try:
            lines.append(json.loads(raw))
        except json.JSONDecodeError:
            continue
    return lines


async def start_vnas(env: dict[str, str], log: Path) -> asyncio.subprocess.Process:
    with log.open("wb") as handle:
        return await asyncio.create_subprocess_exec(sys.executable, "-m", "vnas", cwd=str(ROOT), env=env,
                                                    stdout=handle, stderr=handle)


async def test_python_m_vnas_runs_a_dispatched_task_and_exits_0_on_sigterm(
    redis_client: redis.Redis, base_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**base_env, "VNAS_SCRIPT": write_script(tmp_path, "echo 64.5"), "GRPC_PORT": "0",
           "LOG_LEVEL": "INFO", "DEFAULT_BLOCK_MS": "200", "VNAS_CONSUMER_NAME": "main-test",
           "VNAS_SHUTDOWN_GRACE_MS": "2000"}
    log = tmp_path / "vnas.log"
    process = await start_vnas(env, log)
    try:
        async def listening() -> bool:
            return any(line.get("msg") == "vnas listening" for line in log_lines(log))

        await wait_until(listening, timeout=20)
        await dispatch(redis_client)

        async def updated() -> bool:
            return len(await read_updates(redis_client)) == 1

        await wait_until(updated, timeout=20)
        assert price_of(await redis_client.get(keys.task_result_key("req-1", 0, "1"))) == "64.50"
        assert await pending_count(redis_client) == 0

        address = next(str(line["address"]) for line in log_lines(log) if line.get("msg") == "vnas listening")
        channel = create_channel(address, 11 * 1024 * 1024)
        reply = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=SERVICE_NAME), timeout=5)
        await channel.close()
        assert reply.status == health_pb2.HealthCheckResponse.SERVING

        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 20) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    outcome = next(line for line in log_lines(log) if line.get("msg") == "task completed")
    assert (outcome["requestId"], outcome["groupIndex"], outcome["taskId"], outcome["traceId"]) == (
        "req-1", 0, "1", "trace-1")
    assert "coupon" not in log.read_text()  # no payloads in logs


async def test_python_m_vnas_without_an_executor_exits_with_the_config_code(
    base_env: dict[str, str], tmp_path: Path
) -> None:
    log = tmp_path / "vnas.log"
    process = await start_vnas({**base_env, "GRPC_PORT": "0"}, log)
    assert await asyncio.wait_for(process.wait(), 20) == EXIT_CONFIG
    assert "VNAS_SCRIPT" in log.read_text() and "VNAS_EXECUTOR" in log.read_text()
