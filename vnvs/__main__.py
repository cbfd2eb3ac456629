"""`vnvs`: the orchestrator process (gRPC OrchestratorService + takeover of orphaned requests)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from vn.v1 import orchestrator_pb2, orchestrator_pb2_grpc
from vncommon.grpcutil import ServiceServer
from vncommon.logs import setup_logging
from vncommon.metrics import serve_metrics
from vncommon.redisconn import create_redis, wait_for_redis
from vncommon.service import run_service
from vnvs.runner import RunnerPool
from vnvs.server import OrchestratorService
from vnvs.settings import VnvsSettings

log = logging.getLogger("vnvs")


async def serve(env: Mapping[str, str], stop: asyncio.Event) -> None:
    settings = VnvsSettings.from_env(env)
    setup_logging("vnvs", settings.common.log_level)
    # Each running request blocks one connection on its updates stream, so the pool grows with them.
    client = create_redis(settings.common.redis_url, max_connections=settings.max_concurrent_requests + 64)
    await wait_for_redis(client)
    runners = RunnerPool(client, settings)
    service_name = orchestrator_pb2.DESCRIPTOR.services_by_name["OrchestratorService"].full_name
    server = ServiceServer(settings.common.grpc_max_message_bytes, [service_name])
    orchestrator_pb2_grpc.add_OrchestratorServiceServicer_to_server(  # type: ignore[no-untyped-call]
        OrchestratorService(client, runners), server.server)
    port = server.bind(f"{settings.grpc_host}:{settings.grpc_port}", settings.common.tls)
    serve_metrics(settings.common.metrics_port, settings.grpc_host)
    await server.start()
    log.info("vnvs listening", extra={"fields": {"address": f"{settings.grpc_host}:{port}",
                                                  "instance": settings.instance_id}})
    recovery = asyncio.create_task(runners.recover_orphans(stop))
    await stop.wait()
    log.info("vnvs stopping")
    grace = settings.shutdown_grace_ms / 1000
    await server.set_serving(False)
    await runners.stop(grace)
    await server.stop(grace)
    await recovery
    await client.aclose()


def main() -> int:
    return run_service("vnvs", serve)


if __name__ == "__main__":
    raise SystemExit(main())
