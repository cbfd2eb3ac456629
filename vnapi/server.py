"""Assembling the vnapi process: Redis, the gRPC server, the lifecycle hub and the ingest consumer."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from vn.v1 import orchestrator_pb2_grpc, valuation_pb2, valuation_pb2_grpc
from vnapi.aio import until_stopped
from vnapi.ingest import IngestConsumer
from vnapi.lifecycle_hub import LifecycleHub
from vnapi.service import ValuationService
from vnapi.settings import VnapiSettings
from vncommon.grpcutil import ServiceServer, create_channel
from vncommon.logs import setup_logging
from vncommon.metrics import serve_metrics
from vncommon.redisconn import create_redis, wait_for_redis

log = logging.getLogger(__name__)

SERVICE_NAME = valuation_pb2.DESCRIPTOR.services_by_name["ValuationService"].full_name


class VnapiApp:
    """The running service; `run(stop)` serves until `stop` is set, then shuts down in order."""

    def __init__(self, settings: VnapiSettings) -> None:
        self.settings = settings
        self.client = create_redis(settings.common.redis_url, settings.redis_max_connections)
        # The hub blocks in XREAD most of the time: it gets its own connection.
        self.hub_client = create_redis(settings.common.redis_url, 1)
        self.hub = LifecycleHub(self.hub_client, settings.common.lifecycle_block_ms)
        common = settings.common
        self.channel = create_channel(settings.vnvs_address, common.grpc_max_message_bytes, common.tls)
        # The generated gRPC modules carry no annotations.
        stub = orchestrator_pb2_grpc.OrchestratorServiceStub(self.channel)  # type: ignore[no-untyped-call]
        self.consumer = IngestConsumer(self.client, settings, stub)
        self.server = ServiceServer(settings.common.grpc_max_message_bytes, [SERVICE_NAME])
        servicer = ValuationService(self.client, settings, self.hub)
        valuation_pb2_grpc.add_ValuationServiceServicer_to_server(  # type: ignore[no-untyped-call]
            servicer, self.server.server
        )
        self.port = 0
        self.started = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        try:
            reachable, _ = await until_stopped(wait_for_redis(self.client), stop)
            if reachable:
                await self._serve(stop)
        finally:
            await self.channel.close()
            await self.client.aclose()
            await self.hub_client.aclose()

    async def _serve(self, stop: asyncio.Event) -> None:
        self.port = self.server.bind(self.settings.listen_address, self.settings.common.tls)
        serve_metrics(self.settings.common.metrics_port, self.settings.grpc_host)
        hub_stop = asyncio.Event()
        # One TaskGroup for the long-lived loops: if one crashes, the process stops loudly.
        async with asyncio.TaskGroup() as loops:
            loops.create_task(self.hub.run(hub_stop), name="lifecycle-hub")
            loops.create_task(self.consumer.run(stop), name="ingest-consumer")
            try:
                await self.server.start()
                log.info("vnapi serving", extra={"fields": {"port": self.port}})
                self.started.set()
                await stop.wait()
                log.info("vnapi stopping")
            finally:
                await self._shutdown(stop, hub_stop)

    async def _shutdown(self, stop: asyncio.Event, hub_stop: asyncio.Event) -> None:
        # Order: stop taking ingest work, refuse new calls and let running ones (sync waits need the
        # hub) finish within the grace period, then stop the hub.
        stop.set()
        await asyncio.shield(self.server.stop(self.settings.shutdown_grace_ms / 1000))
        hub_stop.set()


async def serve(env: Mapping[str, str], stop: asyncio.Event) -> None:
    """The `run_service` entry: settings, logging, then the app until SIGTERM."""
    settings = VnapiSettings.from_env(env)
    setup_logging("vnapi", settings.common.log_level)
    await VnapiApp(settings).run(stop)
