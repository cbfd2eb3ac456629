"""The gateway process: the REST application on HTTP_HOST:HTTP_PORT, over vnapi's gRPC API."""

from __future__ import annotations

import errno
import logging
from collections.abc import Mapping

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from gateway.app import create_app
from gateway.middleware import METRICS
from gateway.settings import GatewaySettings
from vncommon.config import is_loopback, listen_address
from vncommon.errors import BindError
from vncommon.logs import setup_logging
from vncommon.looplag import LoopLagMonitor, export_lag
from vncommon.service import Loop, Service

log = logging.getLogger(__name__)
LOOP_STALL_S = 1.0


class QuietBadRequests(logging.Filter):
    """aiohttp logs a request it cannot parse (a NUL in a header, a broken request line) at ERROR with a
    traceback. Any client can send one, so it becomes one INFO line: no log flood, nothing to page on."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError) and exc.code == 400:
            record.levelno, record.levelname, record.exc_info = logging.INFO, "INFO", None
            record.fields = {"error": str(exc.message).splitlines()[0][:200]}
        return True


class GatewayService(Service):
    """aiohttp behind the runner; it needs no Redis to start (/healthz reports what is down)."""

    name = "gateway"

    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        app = create_app(settings)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=self.grace_s)
        self._cleaned = False
        self.lag = LoopLagMonitor(LOOP_STALL_S)
        export_lag("vn_gateway", self.lag, app[METRICS].registry)

    @property
    def grace_s(self) -> float:
        return self.settings.shutdown_grace_ms / 1000

    async def bind(self) -> str:
        if not self.settings.api_tokens and not is_loopback(self.settings.http_host):
            log.warning("the REST API listens beyond this machine without authentication: anyone who reaches "
                        "it may submit; set GATEWAY_API_TOKENS",
                        extra={"fields": {"address": listen_address(self.settings.http_host,
                                                                    self.settings.http_port)}})
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.settings.http_host, self.settings.http_port)
        try:
            await site.start()
        except OSError as exc:
            reason = "the address is in use" if exc.errno == errno.EADDRINUSE else exc.strerror
            address = listen_address(self.settings.http_host, self.settings.http_port)
            raise BindError(f"cannot listen on {address}: {reason}") from exc
        return site.name

    def loops(self) -> dict[str, Loop]:
        return {"loop-lag": self.lag.run()}

    def stop_fetching(self) -> None:
        self.lag.stop()

    async def drain(self, grace_s: float) -> None:
        # Closes the listener, waits for running handlers (bounded), then closes the vnapi channel.
        if not self._cleaned:
            self._cleaned = True
            await self._runner.cleanup()

    async def close(self) -> None:
        await self.drain(self.grace_s)


def build(env: Mapping[str, str]) -> GatewayService:
    settings = GatewaySettings.from_env(env)
    setup_logging("gateway", settings.log_level)
    logging.getLogger("aiohttp.server").addFilter(QuietBadRequests())
    return GatewayService(settings)
