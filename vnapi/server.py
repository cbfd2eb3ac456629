"""The vnapi process: the ValuationService, the lifecycle hub and the ingest consumer."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

import redis.asyncio as redis

from vn.v1 import console_pb2, console_pb2_grpc, orchestrator_pb2_grpc, valuation_pb2
from vnapi import stream_gauges
from vnapi.console_servicer import ConsoleService
from vnapi.ingest import IngestConsumer
from vnapi.lifecycle_home import LifecycleHome
from vnapi.lifecycle_hub import LifecycleHub
from vnapi.servicer import ValuationService
from vnapi.settings import VnapiSettings
from vnapi.submitwire import add_valuation_service
from vncommon.grpcutil import ServiceServer, create_channel
from vncommon.logs import setup_logging
from vncommon.looplag import LoopLagMonitor, export_lag
from vncommon.metrics import serve_metrics
from vncommon.redisconn import create_redis
from vncommon.service import GrpcService, Loop

# A tick this late counts as a stall in the lag monitor (vnapi only exports it; vnvs also reports health).
LOOP_STALL_S = 1.0
SERVICE_NAME = valuation_pb2.DESCRIPTOR.services_by_name["ValuationService"].full_name
CONSOLE_SERVICE_NAME = console_pb2.DESCRIPTOR.services_by_name["ConsoleService"].full_name


class VnapiService(GrpcService):
    """Calls from clients; the hub feeds their waits; the consumer hands requests to vnvs."""

    name = "vnapi"

    def __init__(self, settings: VnapiSettings) -> None:
        self.settings = settings
        common = settings.common
        self.client = create_redis(common.redis_url, settings.redis_max_connections, mode=common.redis_mode)
        # The hub blocks in XREAD most of the time: it gets its own connection.
        self.hub_client = create_redis(common.redis_url, 1, mode=common.redis_mode)
        self.home = LifecycleHome(common.stream_shards)  # claimed at start, before any call is served
        self.hub = LifecycleHub(self.hub_client, common.lifecycle_block_ms, layouts=common.stream_layouts,
                                home=self.home)
        self.channel = create_channel(settings.vnvs_address, common.grpc_max_message_bytes, common.tls,
                                      common.grpc_client_token)
        # The generated gRPC modules carry no annotations.
        stub = orchestrator_pb2_grpc.OrchestratorServiceStub(self.channel)  # type: ignore[no-untyped-call]
        self.consumer = IngestConsumer(self.client, settings, stub)
        self._hub_stop = asyncio.Event()
        self.lag = LoopLagMonitor(LOOP_STALL_S)
        server = ServiceServer(common.grpc_max_message_bytes, [SERVICE_NAME, CONSOLE_SERVICE_NAME],
                               common.grpc_api_tokens, max_send_bytes=common.grpc_max_response_message_bytes)
        self.servicer = ValuationService(self.client, settings, self.hub, self.home)
        add_valuation_service(self.servicer, server.server)
        console_pb2_grpc.add_ConsoleServiceServicer_to_server(  # type: ignore[no-untyped-call]
            ConsoleService(self.client, common.default_block_ms, common.stream_layouts), server.server)
        super().__init__(server, settings.listen_address, common.tls, self.client, settings.shutdown_grace_ms / 1000)

    @property
    def port(self) -> int:
        return self.server.port

    async def start(self) -> None:
        export_lag("vnapi", self.lag)
        serve_metrics(self.settings.common.metrics_port, self.settings.grpc_host)
        await self.home.claim(self.client)
        await super().start()

    def loops(self) -> dict[str, Loop]:
        gauges = stream_gauges.run(self.client, self._hub_stop, self.settings.common.stream_layouts)
        return {"lifecycle-hub": self.hub.run(self._hub_stop), "loop-lag": self.lag.run(),
                **self.consumer.loops(), "stream-gauges": gauges}

    def stop_fetching(self) -> None:
        self.consumer.stop_fetching()
        self.lag.stop()

    async def drain(self, grace_s: float) -> None:
        # Running calls (sync waits need the hub) and hand-overs to vnvs share the grace; only then
        # does the hub stop.
        await asyncio.gather(super().drain(grace_s), self.consumer.finish(grace_s))
        self._hub_stop.set()

    async def hand_back(self) -> None:
        await self.consumer.hand_back()

    def redis_clients(self) -> Sequence[redis.Redis]:
        # The hub's client too: on a cluster its first command maps the cluster, which must happen once,
        # not in every shard's read loop at the same time.
        return (self.client, self.hub_client)

    async def close(self) -> None:
        self.servicer.close()
        await self.channel.close()
        await self.client.aclose()
        await self.hub_client.aclose()


def build(env: Mapping[str, str]) -> VnapiService:
    settings = VnapiSettings.from_env(env)
    setup_logging("vnapi", settings.common.log_level)
    return VnapiService(settings)
