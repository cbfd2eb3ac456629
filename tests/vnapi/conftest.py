"""Fixtures for vnapi: real Redis, a real vnapi gRPC server and a recording orchestrator on port 0."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import pytest
import redis.asyncio as redis

from tests.conftest import RedisServer
from tests.vnapi.support import FakeOrchestrator, VnvsStandIn
from vn.v1 import orchestrator_pb2_grpc, valuation_pb2_grpc
from vnapi.server import VnapiService
from vnapi.settings import VnapiSettings
from vncommon.config import CommonSettings
from vncommon.grpcutil import create_channel
from vncommon.service import serve


@pytest.fixture
async def fake_vnvs() -> AsyncIterator[tuple[FakeOrchestrator, str]]:
    orchestrator = FakeOrchestrator()
    server = grpc.aio.server()
    orchestrator_pb2_grpc.add_OrchestratorServiceServicer_to_server(orchestrator, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield orchestrator, f"127.0.0.1:{port}"
    if orchestrator.hold is not None:
        orchestrator.hold.set()
    await server.stop(0)


@pytest.fixture
def make_settings(redis_server: RedisServer) -> Callable[..., VnapiSettings]:
    def make(**overrides: Any) -> VnapiSettings:
        common = CommonSettings(redis_url=redis_server.url, redis_mode=redis_server.mode,
                                stream_shards=redis_server.stream_shards, lifecycle_block_ms=200,
                                default_block_ms=200)
        common = dataclasses.replace(common, **overrides.pop("common", {}))
        base = VnapiSettings(common=common, grpc_port=0, vnvs_address="127.0.0.1:1",
                             sync_wait_timeout_ms=10_000, shutdown_grace_ms=1_000, ingest_claim_idle_ms=30_000,
                             consumer_name="vnapi-test")
        return dataclasses.replace(base, **overrides)

    return make


class RunningVnapi:
    def __init__(self, app: VnapiService, task: asyncio.Task[int], stop: asyncio.Event) -> None:
        self.app = app
        self.task = task
        self.stop = stop
        self.channel = create_channel(f"127.0.0.1:{app.port}", app.settings.common.grpc_max_message_bytes)
        self.stub = valuation_pb2_grpc.ValuationServiceStub(self.channel)

    async def close(self) -> None:
        self.stop.set()
        await self.channel.close()
        await asyncio.wait_for(self.task, 15)


@pytest.fixture
async def start_vnapi(redis_client: redis.Redis) -> AsyncIterator[Callable[[VnapiSettings], Awaitable[RunningVnapi]]]:
    running: list[RunningVnapi] = []

    async def start(settings: VnapiSettings) -> RunningVnapi:
        app = VnapiService(settings)
        stop, started = asyncio.Event(), asyncio.Event()
        task = asyncio.create_task(serve(app, stop, started))
        waiting = asyncio.ensure_future(started.wait())
        await asyncio.wait({task, waiting}, timeout=10, return_when=asyncio.FIRST_COMPLETED)
        waiting.cancel()
        if task.done():
            task.result()
        assert started.is_set(), "vnapi did not start"
        running.append(RunningVnapi(app, task, stop))
        return running[-1]

    yield start
    for item in running:
        await item.close()


@pytest.fixture
async def vnapi(
    start_vnapi: Callable[[VnapiSettings], Awaitable[RunningVnapi]],
    make_settings: Callable[..., VnapiSettings],
    fake_vnvs: tuple[FakeOrchestrator, str],
) -> RunningVnapi:
    """A vnapi whose ingest consumer talks to the recording orchestrator."""
    return await start_vnapi(make_settings(vnvs_address=fake_vnvs[1]))


@pytest.fixture
def vnvs(redis_client: redis.Redis, redis_server: RedisServer) -> VnvsStandIn:
    return VnvsStandIn(redis_client, redis_server.stream_shards)
