"""Fixtures: the scripted vnapi (shared with the gateway tests) on a real gRPC port."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.gateway.scripted import ScriptedVnapi, start_scripted_vnapi
from vnclient import ClientSettings, ValuationClient


@pytest.fixture
async def vnapi() -> AsyncIterator[ScriptedVnapi]:
    server = await start_scripted_vnapi()
    yield server
    await server.stop()


@pytest.fixture
async def client(vnapi: ScriptedVnapi) -> AsyncIterator[ValuationClient]:
    async with ValuationClient(ClientSettings(address=vnapi.address, call_timeout_s=5)) as client:
        yield client
