"""Starting a vnas process: `vnas` or `python -m vnas` (settings from the environment, SPEC section 12)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping

from vnas.consumer import TaskConsumer
from vnas.executor import build_executor
from vnas.metrics import serve_metrics
from vnas.server import SERVICE_NAME, add_task_service
from vnas.settings import VnasSettings
from vncommon.grpcutil import ServiceServer
from vncommon.logs import setup_logging
from vncommon.redisconn import create_redis
from vncommon.service import run_service

log = logging.getLogger("vnas")

# Beyond the task workers: the fetch loop, keep-fresh, payload reads and settles may overlap.
EXTRA_REDIS_CONNECTIONS = 8


async def serve(env: Mapping[str, str], stop: asyncio.Event) -> None:
    """Run the gRPC server and the stream consumer until `stop` is set, then shut down in order."""
    settings = VnasSettings.from_env(env)
    setup_logging("vnas", settings.common.log_level)
    executor = build_executor(settings, env)
    client = create_redis(settings.redis_url, max_connections=settings.concurrency * 2 + EXTRA_REDIS_CONNECTIONS)
    server = ServiceServer(settings.common.grpc_max_message_bytes, [SERVICE_NAME])
    add_task_service(server.server, executor)
    port = server.bind(settings.grpc_address, settings.common.tls)
    await server.start()
    if settings.metrics_port is not None:
        serve_metrics(settings.metrics_port, settings.grpc_host)
    log.info("vnas listening", extra={"fields": {
        "address": f"{settings.grpc_host}:{port}", "consumer": settings.consumer_name,
        "concurrency": settings.concurrency, "executor": settings.script or settings.executor}})
    consumer = TaskConsumer(client, settings, executor)
    worker = asyncio.create_task(consumer.run(), name="vnas-consumer")
    try:
        await _until_stop_or_crash(stop, worker)
    finally:
        await _shutdown(settings, server, consumer, worker)
        await client.aclose()
    log.info("vnas stopped")


async def _until_stop_or_crash(stop: asyncio.Event, worker: asyncio.Task[None]) -> None:
    stopped = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({stopped, worker}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
    if worker.done():
        worker.result()  # a crashed consumer stops the process loudly
        raise RuntimeError("the stream consumer ended on its own")


async def _shutdown(settings: VnasSettings, server: ServiceServer, consumer: TaskConsumer,
                    worker: asyncio.Task[None]) -> None:
    """NOT_SERVING, stop fetching, let RPCs and in-flight tasks finish within the grace, in that order."""
    log.info("vnas stopping", extra={"fields": {"graceMs": settings.shutdown_grace_ms}})
    await server.set_serving(False)
    consumer.stop()
    await asyncio.gather(server.stop(settings.shutdown_grace_s), _await_worker(worker, settings))


async def _await_worker(worker: asyncio.Task[None], settings: VnasSettings) -> None:
    # The consumer bounds its own wait by the grace; the extra seconds cover settles and the hand-back.
    bound = settings.shutdown_grace_s + 5.0
    if worker.done():
        return
    try:
        await asyncio.wait_for(asyncio.shield(worker), bound)
    except TimeoutError:
        log.error("consumer did not stop in time; cancelling it")
        worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await worker


def main() -> int:
    return run_service("vnas", serve)


if __name__ == "__main__":
    raise SystemExit(main())
