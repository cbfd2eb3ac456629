"""`vn-gateway`: serve the REST API until SIGTERM, then stop taking requests and drain the rest."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from aiohttp import web

from gateway.app import create_app
from gateway.settings import GatewaySettings
from vncommon.logs import setup_logging
from vncommon.service import run_service

log = logging.getLogger("gateway")


async def serve(settings: GatewaySettings, stop: asyncio.Event) -> None:
    """Listen on HTTP_HOST:HTTP_PORT until `stop` is set; in-flight requests get shutdown_grace_ms."""
    runner = web.AppRunner(create_app(settings), access_log=None,
                           shutdown_timeout=settings.shutdown_grace_ms / 1000)
    await runner.setup()
    try:
        site = web.TCPSite(runner, settings.http_host, settings.http_port)
        await site.start()
        log.info("gateway listening", extra={"fields": {"address": site.name, "vnapi": settings.vnapi_address}})
        await stop.wait()
        log.info("gateway stopping")
    finally:
        # Closes the listener, waits for running handlers (bounded), then closes the vnapi channel.
        await runner.cleanup()
    log.info("gateway stopped")


async def _main(env: Mapping[str, str], stop: asyncio.Event) -> None:
    settings = GatewaySettings.from_env(env)
    setup_logging("gateway", settings.log_level)
    await serve(settings, stop)


def main() -> int:
    """Entry point of the `vn-gateway` console command."""
    return run_service("gateway", _main)


if __name__ == "__main__":
    raise SystemExit(main())
