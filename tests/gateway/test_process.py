"""Gateway settings from the environment, and the `vn-gateway` process starting and stopping on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from typing import Any

import aiohttp
import pytest

from gateway.server import GatewayService
from gateway.settings import GatewaySettings
from tests.conftest import ROOT, RedisServer, free_port
from tests.gateway.scripted import ScriptedVnapi
from vncommon.errors import ConfigError
from vncommon.service import EXIT_CONFIG, EXIT_OK, serve


def test_settings_have_the_documented_defaults() -> None:
    settings = GatewaySettings.from_env({})
    assert (settings.http_host, settings.http_port, settings.vnapi_address) == ("127.0.0.1", 8080, "127.0.0.1:50051")
    assert (settings.payload_max_bytes, settings.sync_wait_timeout_ms, settings.call_timeout_ms) == (
        10 * 1024 * 1024, 120_000, 10_000)
    assert settings.api_tokens == ()
    assert settings.sync_deadline_s > settings.sync_wait_timeout_ms / 1000
    assert settings.client_max_size > settings.payload_max_bytes


def test_settings_read_every_variable() -> None:
    settings = GatewaySettings.from_env({
        "HTTP_HOST": "0.0.0.0", "HTTP_PORT": "9000", "VNAPI_ADDRESS": "vnapi:50051",
        "PAYLOAD_MAX_BYTES": "2048", "SYNC_WAIT_TIMEOUT_MS": "500", "GATEWAY_API_TOKENS": "token-one1, token-two2",
        "GATEWAY_CALL_TIMEOUT_MS": "1500", "REDIS_URL": "rediss://:pw@redis:6380/1",
    })
    assert settings == GatewaySettings(
        http_host="0.0.0.0", http_port=9000, vnapi_address="vnapi:50051", payload_max_bytes=2048,
        sync_wait_timeout_ms=500, api_tokens=("token-one1", "token-two2"), call_timeout_ms=1500,
        redis_url="rediss://:pw@redis:6380/1",
    )


@pytest.mark.parametrize(("name", "value"), [
    ("HTTP_PORT", "eighty"), ("HTTP_PORT", "70000"), ("VNAPI_ADDRESS", "no-port"),
    ("SYNC_WAIT_TIMEOUT_MS", "0"), ("GATEWAY_CALL_TIMEOUT_MS", "-5"), ("REDIS_URL", "http://x"),
    ("GATEWAY_API_TOKENS", "short"),
])
def test_a_bad_value_is_refused_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        GatewaySettings.from_env({name: value})


async def test_serve_answers_until_stop_is_set(vnapi: ScriptedVnapi, redis_server: RedisServer) -> None:
    port = free_port()
    settings = GatewaySettings(http_port=port, vnapi_address=vnapi.address, redis_url=redis_server.url)
    stop = asyncio.Event()
    task = asyncio.create_task(serve(GatewayService(settings), stop))
    async with aiohttp.ClientSession() as session:
        for _ in range(200):
            try:
                async with session.get(f"http://127.0.0.1:{port}/healthz") as response:
                    assert response.status == 200
                    break
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.02)
        else:
            raise AssertionError("gateway did not start listening")
    stop.set()
    await asyncio.wait_for(task, timeout=10)
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", port)


def _environment(**values: str) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VN", "REDIS", "GATEWAY", "HTTP"))}
    env.update({"PYTHONPATH": str(ROOT), "LOG_LEVEL": "WARNING", **values})
    return env


async def test_the_process_stops_cleanly_on_sigterm(redis_server: RedisServer) -> None:
    port = free_port()
    env = _environment(HTTP_PORT=str(port), REDIS_URL=redis_server.url, VNAPI_ADDRESS=f"127.0.0.1:{free_port()}")
    process = await asyncio.create_subprocess_exec(sys.executable, "-m", "gateway", env=env,
                                                   stderr=subprocess.DEVNULL)
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(500):
                try:
                    async with session.get(f"http://127.0.0.1:{port}/healthz") as response:
                        assert response.status == 503  # vnapi is not running
                        break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.02)
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), timeout=15) == EXIT_OK
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_the_process_exits_with_the_config_code_on_a_bad_value() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", env=_environment(HTTP_PORT="not-a-port"), stderr=subprocess.PIPE
    )
    _, stderr = await asyncio.wait_for(process.communicate(), timeout=15)
    assert process.returncode == EXIT_CONFIG
    assert b"HTTP_PORT" in stderr
