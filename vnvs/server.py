"""The vnvs process: the OrchestratorService, the runs it drives and the takeover of orphaned requests."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from vn.v1 import orchestrator_pb2, orchestrator_pb2_grpc
from vncommon.config import listen_address
from vncommon.grpcutil import ServiceServer
from vncommon.logs import setup_logging
from vncommon.looplag import LoopLagMonitor, export_lag
from vncommon.metrics import serve_metrics
from vncommon.redisconn import create_redis
from vncommon.service import GrpcService, Loop
from vnvs.hydration.sandbox import HydrationSandbox
from vnvs.runner import RunnerPool
from vnvs.servicer import OrchestratorService
from vnvs.settings import VnvsSettings

log = logging.getLogger(__name__)
SERVICE_NAME = orchestrator_pb2.DESCRIPTOR.services_by_name["OrchestratorService"].full_name
# Beyond one connection per running request (each blocks on its updates stream): scans, renewals, stores.
EXTRA_REDIS_CONNECTIONS = 64


class VnvsService(GrpcService):
    """Orchestrate calls start runs; a loop adopts requests whose orchestrator died; hydration runs in the
    sandbox's processes; health is NOT_SERVING while the event loop is (or just was) stalled."""

    name = "vnvs"

    def __init__(self, settings: VnvsSettings) -> None:
        self.settings = settings
        self.client = create_redis(settings.common.redis_url,
                                   max_connections=settings.max_concurrent_requests + EXTRA_REDIS_CONNECTIONS,
                                   mode=settings.common.redis_mode)
        self.sandbox = HydrationSandbox(settings.hydration)
        self.runners = RunnerPool(self.client, settings, self.sandbox)
        self.lag = LoopLagMonitor(settings.loop_stall_ms / 1000)
        self._serving = False
        self._stopping = asyncio.Event()
        server = ServiceServer(settings.common.grpc_max_message_bytes, [SERVICE_NAME],
                               settings.common.grpc_api_tokens)
        orchestrator_pb2_grpc.add_OrchestratorServiceServicer_to_server(  # type: ignore[no-untyped-call]
            OrchestratorService(self.client, self.runners), server.server)
        super().__init__(server, listen_address(settings.grpc_host, settings.grpc_port), settings.common.tls,
                         self.client, settings.shutdown_grace_ms / 1000)

    async def start(self) -> None:
        await self.sandbox.start()
        export_lag("vnvs", self.lag)
        serve_metrics(self.settings.common.metrics_port, self.settings.grpc_host)
        await super().start()

    async def set_serving(self, serving: bool) -> None:
        self._serving = serving
        await self.server.set_serving(serving and not self.lag.stalled)

    async def _on_stall(self, stalled: bool) -> None:
        log.warning("event loop stalled; health NOT_SERVING" if stalled else "event loop on time again",
                    extra={"fields": {"lagS": round(self.lag.last_lag, 3)}})
        await self.server.set_serving(self._serving and not stalled)

    def loops(self) -> dict[str, Loop]:
        return {"orphan-recovery": self.runners.recover_orphans(),
                "loop-lag": self.lag.run(self._stopping, self._on_stall)}

    def stop_fetching(self) -> None:
        self.runners.stop_taking()
        self._stopping.set()

    async def drain(self, grace_s: float) -> None:
        # Runs get the grace; the server then refuses new calls (Orchestrate answers quickly).
        await self.runners.finish(grace_s)
        await super().drain(grace_s)

    async def hand_back(self) -> None:
        await self.runners.hand_back()

    async def close(self) -> None:
        await self.sandbox.close()
        await self.client.aclose()


def build(env: Mapping[str, str]) -> VnvsService:
    settings = VnvsSettings.from_env(env)
    setup_logging("vnvs", settings.common.log_level)
    return VnvsService(settings)
