"""Fixtures: a scripted vnapi on a real gRPC port, and gateways on real loopback HTTP ports."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from gateway.app import create_app
from gateway.openapi import build_document
from gateway.settings import GatewaySettings
from tests.conftest import RedisServer
from tests.gateway.scripted import ScriptedVnapi, start_scripted_vnapi

GatewayFactory = Callable[..., Awaitable[TestClient[Any, Any]]]

ROUTE_TEMPLATES = [
    (re.compile(r"^/valuation$"), "/valuation"),
    (re.compile(r"^/valuation/[^/]+/status$"), "/valuation/{requestId}/status"),
    (re.compile(r"^/valuation/[^/]+/results$"), "/valuation/{requestId}/results"),
    (re.compile(r"^/(healthz|openapi\.json|metrics)$"), None),
]

# (method, route template, status) of every answer a gateway gave during this test session.
ANSWERS_SEEN: set[tuple[str, str, int]] = set()


def _template(path: str) -> str | None:
    for pattern, template in ROUTE_TEMPLATES:
        if pattern.match(path):
            return template or path
    return None


async def _record_answer(session: Any, context: Any, params: aiohttp.TraceRequestEndParams) -> None:
    template = _template(params.url.path)
    if template is not None:
        ANSWERS_SEEN.add((params.method.lower(), template, params.response.status))


@pytest.fixture(scope="session", autouse=True)
def answers_are_documented() -> Any:
    """After the session: every (method, route, status) a gateway answered with is in the OpenAPI doc."""
    yield ANSWERS_SEEN
    paths = build_document(GatewaySettings(api_tokens=("x" * 16,)))["paths"]
    missing = sorted(
        (method, path, status) for method, path, status in ANSWERS_SEEN
        if status != 405 and str(status) not in paths.get(path, {}).get(method, {}).get("responses", {})
    )
    assert not missing, f"answers missing from openapi.json: {missing}"


@pytest.fixture
async def vnapi() -> AsyncIterator[ScriptedVnapi]:
    server = await start_scripted_vnapi()
    yield server
    await server.stop()


@pytest.fixture
async def make_gateway(vnapi: ScriptedVnapi, redis_server: RedisServer) -> AsyncIterator[GatewayFactory]:
    """Start gateways (settings overridable) on 127.0.0.1 with a real socket; all closed at teardown."""
    clients: list[TestClient[Any, Any]] = []

    async def factory(**overrides: Any) -> TestClient[Any, Any]:
        values: dict[str, Any] = {"vnapi_address": vnapi.address, "redis_url": redis_server.url,
                                  "call_timeout_ms": 5_000, "health_timeout_ms": 1_000}
        values.update(overrides)
        trace = aiohttp.TraceConfig()
        trace.on_request_end.append(_record_answer)
        client: TestClient[Any, Any] = TestClient(
            TestServer(create_app(GatewaySettings(**values)), host="127.0.0.1", port=0), trace_configs=[trace]
        )
        await client.start_server()
        clients.append(client)
        return client

    yield factory
    for client in clients:
        await client.close()


@pytest.fixture
async def gateway(make_gateway: GatewayFactory) -> TestClient[Any, Any]:
    return await make_gateway()
