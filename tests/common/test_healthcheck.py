"""vn-health, the container health check: real gRPC health servers and a real HTTP server on loopback."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from vncommon.config import TlsSettings
from vncommon.grpcutil import ServiceServer
from vncommon.healthcheck import EXIT_CONFIG, EXIT_NOT_SERVING, EXIT_SERVING, NotServing, check_grpc
from vncommon.localmesh import free_port

NO_TLS = TlsSettings()


@pytest.fixture
async def grpc_health() -> AsyncIterator[tuple[ServiceServer, str]]:
    server = ServiceServer(max_message_bytes=1024 * 1024, service_names=["vn.v1.ValuationService"])
    port = server.bind("127.0.0.1:0")
    await server.start()
    yield server, f"127.0.0.1:{port}"
    await server.stop(0)


@pytest.fixture
async def http_health() -> AsyncIterator[tuple[dict[str, int], str]]:
    answer = {"status": 200}

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"}, status=answer["status"])

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield answer, f"http://127.0.0.1:{port}/healthz"
    await runner.cleanup()


async def vn_health(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    """Run the console script's code in a child process, as a HEALTHCHECK does; (exit code, stderr)."""
    child_env = {k: v for k, v in os.environ.items() if not k.startswith(("GRPC", "VN"))} | (env or {})
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "vncommon.healthcheck", *args, env=child_env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode is not None
    return process.returncode, stderr.decode()


async def test_serving_server_passes_and_not_serving_fails(grpc_health: tuple[ServiceServer, str]) -> None:
    server, address = grpc_health
    await check_grpc(address, "", 3.0, NO_TLS)
    await check_grpc(address, "vn.v1.ValuationService", 3.0, NO_TLS)
    await server.set_serving(False)
    with pytest.raises(NotServing, match="NOT_SERVING"):
        await check_grpc(address, "", 3.0, NO_TLS)


async def test_unknown_service_name_is_not_serving(grpc_health: tuple[ServiceServer, str]) -> None:
    _, address = grpc_health
    with pytest.raises(NotServing, match="NOT_FOUND"):
        await check_grpc(address, "vn.v1.NoSuchService", 3.0, NO_TLS)


async def test_cli_exit_codes_for_grpc(grpc_health: tuple[ServiceServer, str]) -> None:
    server, address = grpc_health
    assert (await vn_health(address))[0] == EXIT_SERVING
    port = address.rpartition(":")[2]
    assert (await vn_health(env={"GRPC_PORT": port}))[0] == EXIT_SERVING, "default target is GRPC_PORT"
    await server.set_serving(False)
    code, stderr = await vn_health(address)
    assert code == EXIT_NOT_SERVING
    assert "not serving" in stderr and address in stderr


async def test_cli_nothing_listening_is_unhealthy_with_a_reason() -> None:
    address = f"127.0.0.1:{free_port()}"
    code, stderr = await vn_health(address, "--timeout", "1")
    assert code == EXIT_NOT_SERVING
    assert "UNAVAILABLE" in stderr or "DEADLINE_EXCEEDED" in stderr


async def test_cli_bad_grpc_port_setting_is_a_config_error() -> None:
    code, stderr = await vn_health(env={"GRPC_PORT": "fifty"})
    assert code == EXIT_CONFIG
    assert "GRPC_PORT" in stderr


async def test_cli_http_target(http_health: tuple[dict[str, int], str]) -> None:
    answer, url = http_health
    assert (await vn_health(url))[0] == EXIT_SERVING
    answer["status"] = 503
    code, stderr = await vn_health(url)
    assert code == EXIT_NOT_SERVING
    assert "503" in stderr
