"""The vnvs process: the OrchestratorService, the runs it drives and the takeover of orphaned requests."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import redis.asyncio as redis

from vn.v1 import orchestrator_pb2, orchestrator_pb2_grpc
from vncommon.config import listen_address
from vncommon.grpcutil import ServiceServer
from vncommon.logs import setup_logging
from vncommon.metrics import serve_metrics
from vncommon.redisconn import create_redis
from vncommon.service import GrpcService, Loop
from vnvs.runner import RunnerPool
from vnvs.servicer import OrchestratorService
from vnvs.settings import VnvsSettings

SERVICE_NAME = orchestrator_pb2.DESCRIPTOR.services_by_name["OrchestratorService"].full_name
# Beyond one connection per running request (each blocks on its updates stream): scans, renewals, stores.
EXTRA_REDIS_CONNECTIONS = 64


class VnvsService(GrpcService):
    """Orchestrate calls start runs; a loop adopts requests whose orchestrator died."""

    name = "vnvs"

    def __init__(self, settings: VnvsSettings) -> None:
        self.settings = settings
        self.client = create_redis(settings.common.redis_url,
                                   max_connections=settings.max_concurrent_requests + EXTRA_REDIS_CONNECTIONS)
        self.runners = RunnerPool(self.client, settings)
        server = ServiceServer(settings.common.grpc_max_message_bytes, [SERVICE_NAME],
                               settings.common.grpc_api_tokens)
        orchestrator_pb2_grpc.add_OrchestratorServiceServicer_to_server(  # type: ignore[no-untyped-call]
            OrchestratorService(self.client, self.runners), server.server)
        super().__init__(server, listen_address(settings.grpc_host, settings.grpc_port), settings.common.tls)

    @property
    def grace_s(self) -> float:
        return self.settings.shutdown_grace_ms / 1000

    def redis_clients(self) -> Sequence[redis.Redis]:
        return (self.client,)

    async def start(self) -> None:
        serve_metrics(self.settings.common.metrics_port, self.settings.grpc_host)
        await super().start()

    def loops(self) -> dict[str, Loop]:
        return {"orphan-recovery": self.runners.recover_orphans()}

    def stop_fetching(self) -> None:
        self.runners.stop_taking()

    async def drain(self, grace_s: float) -> None:
        # Runs get the grace; the server then refuses new calls (Orchestrate answers quickly).
        await self.runners.finish(grace_s)
        await super().drain(grace_s)

    async def hand_back(self) -> None:
        await self.runners.hand_back()

    async def close(self) -> None:
        await self.client.aclose()


def build(env: Mapping[str, str]) -> VnvsService:
    settings = VnvsSettings.from_env(env)
    setup_logging("vnvs", settings.common.log_level)
    return VnvsService(settings)
