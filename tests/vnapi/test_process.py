"""The vnapi process: settings from the environment, health, and a clean exit on SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import tomllib

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.conftest import ROOT, free_port
from vnapi.settings import VnapiSettings
from vncommon.errors import ConfigError
from vncommon.service import EXIT_CONFIG, EXIT_OK


async def _health(port: int) -> int:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = await stub.Check(health_pb2.HealthCheckRequest(service="vn.v1.ValuationService"), timeout=1)
        except grpc.aio.AioRpcError:
            return -1
        return int(reply.status)


async def _wait_serving(process: asyncio.subprocess.Process, port: int) -> None:
    for _ in range(200):
        if process.returncode is not None:
            raise AssertionError(f"vnapi exited early with {process.returncode}")
        if await _health(port) == health_pb2.HealthCheckResponse.SERVING:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("vnapi never reported SERVING")


async def test_python_m_vnapi_serves_health_and_exits_0_on_sigterm(base_env: dict[str, str]) -> None:
    port = free_port()
    env = {**base_env, "GRPC_PORT": str(port), "VNVS_ADDRESS": f"127.0.0.1:{free_port()}"}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "vnapi", env=env, cwd=ROOT,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )
    try:
        await _wait_serving(process, port)
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), 20)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == EXIT_OK, stderr.decode()


def test_the_console_command_points_at_main() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["vnapi"] == "vnapi.__main__:main"
    from vnapi.__main__ import main

    assert callable(main)


def test_a_bad_setting_stops_the_process_with_exit_config_naming_the_variable(base_env: dict[str, str]) -> None:
    env = {**base_env, "GRPC_PORT": "not-a-port"}
    result = subprocess.run([sys.executable, "-m", "vnapi"], env=env, cwd=ROOT, capture_output=True, timeout=30)
    assert result.returncode == EXIT_CONFIG
    assert b"GRPC_PORT" in result.stderr


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("GRPC_PORT", "70000"),
        ("SYNC_WAIT_TIMEOUT_MS", "0"),
        ("VNVS_ADDRESS", "no-port"),
        ("VNAPI_INGEST_CONCURRENCY", "0"),
        ("VNAPI_INGEST_CLAIM_IDLE_MS", "abc"),
        ("VNAPI_SHUTDOWN_GRACE_MS", "-1"),
        ("VNAPI_CONSUMER_NAME", "has space"),
        ("PAYLOAD_MAX_BYTES", "12"),
        ("REDIS_URL", "http://localhost"),
    ],
)
def test_bad_settings_raise_config_error_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        VnapiSettings.from_env({name: value})


def test_settings_default_as_the_spec_says() -> None:
    settings = VnapiSettings.from_env({"GRPC_PORT": "0", "VNAPI_CONSUMER_NAME": "api-1"})
    assert (settings.grpc_host, settings.grpc_port, settings.vnvs_address) == ("127.0.0.1", 0, "127.0.0.1:50052")
    assert settings.sync_wait_timeout_ms == 120_000 and settings.ingest_claim_idle_ms == 30_000
    assert settings.consumer_name == "api-1" and settings.common.payload_max_bytes == 10 * 1024 * 1024
    assert VnapiSettings.from_env({}).grpc_port == 50051
