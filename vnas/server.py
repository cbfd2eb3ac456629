"""The vnas process: the TaskService and the dispatch stream consumer, sharing one executor."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from vnas.consumer import TaskConsumer
from vnas.executors import build_executor
from vnas.metrics import serve_metrics
from vnas.servicer import SERVICE_NAME, add_task_service
from vnas.settings import VnasSettings
from vncommon.grpcutil import ServiceServer
from vncommon.logs import setup_logging
from vncommon.looplag import LoopLagMonitor, export_lag
from vncommon.redisconn import create_redis
from vncommon.service import GrpcService, Loop

# Beyond the task workers: the fetch loop, keep-fresh, payload reads and settles may overlap.
EXTRA_REDIS_CONNECTIONS = 8
LOOP_STALL_S = 1.0


class VnasService(GrpcService):
    """A stateless worker: ExecuteTask calls and dispatch entries run through the same executor."""

    name = "vnas"

    def __init__(self, settings: VnasSettings, env: Mapping[str, str]) -> None:
        self.settings = settings
        executor = self.executor = build_executor(settings, env)
        self.client = create_redis(settings.redis_url,
                                   max_connections=settings.concurrency * 2 + EXTRA_REDIS_CONNECTIONS,
                                   mode=settings.common.redis_mode)
        self.consumer = TaskConsumer(self.client, settings, executor)
        self.lag = LoopLagMonitor(LOOP_STALL_S)
        server = ServiceServer(settings.common.grpc_max_message_bytes, [SERVICE_NAME],
                               settings.common.grpc_api_tokens)
        add_task_service(server.server, executor)
        super().__init__(server, settings.grpc_address, settings.common.tls, self.client, settings.shutdown_grace_s)

    async def start(self) -> None:
        export_lag("vnas", self.lag)
        if self.settings.metrics_port is not None:
            serve_metrics(self.settings.metrics_port, self.settings.grpc_host)
        await super().start()

    def loops(self) -> dict[str, Loop]:
        return {"loop-lag": self.lag.run(), **self.consumer.loops()}

    def stop_fetching(self) -> None:
        self.consumer.stop_fetching()
        self.lag.stop()

    async def drain(self, grace_s: float) -> None:
        # Running ExecuteTask calls and dispatched tasks share the grace, so they wait side by side.
        await asyncio.gather(super().drain(grace_s), self.consumer.finish(grace_s))

    async def hand_back(self) -> None:
        await self.consumer.hand_back()

    async def close(self) -> None:
        await self.executor.aclose()  # warm processes: after the last task, before the process exits
        await self.client.aclose()


def build(env: Mapping[str, str]) -> VnasService:
    settings = VnasSettings.from_env(env)
    setup_logging("vnas", settings.common.log_level)
    return VnasService(settings, env)
