"""The one way a vnml service process runs: settings, Redis, bind, serve, long-lived loops, ordered stop.

Each service's `server.py` builds a `Service` from its settings; `run_service` does the rest, in order:

1. build the service from the environment (a bad value: exit EXIT_CONFIG with one line naming it);
2. wait for Redis, giving way at once to SIGTERM;
3. bind (a port in use: exit EXIT_BIND with one line, not a traceback);
4. start serving and mark health SERVING;
5. run the service's long-lived loops in one `asyncio.TaskGroup`, so a crashed loop stops the process;
   health follows Redis meanwhile (NOT_SERVING while it does not answer);
6. on SIGTERM: NOT_SERVING, stop fetching, grace for running calls and work, hand back, close pools.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any

import redis.asyncio as redis

from vncommon import tracing_setup
from vncommon.aio import until_stopped
from vncommon.config import TlsSettings
from vncommon.errors import BindError, ConfigError
from vncommon.grpcutil import ServiceServer
from vncommon.heap import release_large_buffers
from vncommon.redisconn import wait_for_redis
from vncommon.redishealth import follow_redis

EXIT_OK = 0
EXIT_FAILURE = 1  # a long-lived loop crashed; the log has its traceback
EXIT_BIND = 69  # EX_UNAVAILABLE from sysexits.h: the listen address is taken or not ours
EXIT_CONFIG = 78  # EX_CONFIG from sysexits.h: an operator must fix the environment
# gRPC's completion-queue thread shares the GIL with the event loop. With Python's default 5 ms switch
# interval the loop, after releasing the GIL around a socket write, can wait milliseconds to get it
# back; profiling showed Redis writes costing 360 us instead of 50 us. A short interval fixes that.
GIL_SWITCH_INTERVAL_S = 0.0002

log = logging.getLogger(__name__)

Loop = Coroutine[Any, Any, None]


class Service:
    """A service process as the runner drives it; each service's `server.py` subclasses it.

    Every step has a harmless default, so a service overrides only the steps it has.
    """

    name = "service"

    @property
    def grace_s(self) -> float:
        """How long running calls and in-flight work may take to finish once stopping."""
        return 10.0

    def redis_clients(self) -> Sequence[redis.Redis]:
        """Clients to wait for before binding; empty when the service starts without Redis."""
        return ()

    async def bind(self) -> str:
        """Listen; the address listened on (for the log). Raises BindError when it cannot."""
        return ""

    async def start(self) -> None:
        """Start answering calls; health is marked SERVING right after."""

    async def set_serving(self, serving: bool) -> None:
        """Report SERVING / NOT_SERVING to health checks."""

    def loops(self) -> dict[str, Loop]:
        """Long-lived loops, by name. Each returns on its own once `stop_fetching()` was called."""
        return {}

    def stop_fetching(self) -> None:
        """Stop taking new work (safe to call twice)."""

    async def drain(self, grace_s: float) -> None:
        """Refuse new calls; let running calls and in-flight work finish within `grace_s`."""

    async def hand_back(self) -> None:
        """Give back what is unfinished (pending entries, leases) so another instance takes it at once."""

    async def close(self) -> None:
        """Close pools and channels; called once, whatever happened before."""


def install_stop_handlers(stop: asyncio.Event) -> None:
    """SIGTERM and SIGINT set `stop`; the service then shuts down in order."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)


async def serve(service: Service, stop: asyncio.Event, started: asyncio.Event | None = None) -> int:
    """Steps 2-6 for an already built service; returns the exit code. Tests call this in-process."""
    try:
        for client in service.redis_clients():
            reachable, _ = await until_stopped(wait_for_redis(client), stop)
            if not reachable:
                return EXIT_OK  # stopped before Redis answered: nothing was taken
        try:
            address = await service.bind()
        except BindError as exc:
            print(f"{service.name}: {exc}", file=sys.stderr)
            return EXIT_BIND
        await service.start()
        await service.set_serving(True)
        log.info(f"{service.name} listening", extra={"fields": {"address": address}})
        if started is not None:
            started.set()
        async with asyncio.TaskGroup() as group:
            for name, loop in service.loops().items():
                group.create_task(loop, name=name)
            group.create_task(_stop_in_order(service, stop), name="stop-in-order")
            if service.redis_clients():
                group.create_task(follow_redis(service.redis_clients(), service.set_serving, stop),
                                  name="health-follows-redis")
        log.info(f"{service.name} stopped")
        return EXIT_OK
    finally:
        await service.close()


async def _stop_in_order(service: Service, stop: asyncio.Event) -> None:
    await stop.wait()
    log.info(f"{service.name} stopping", extra={"fields": {"graceS": service.grace_s}})
    await service.set_serving(False)
    service.stop_fetching()
    await service.drain(service.grace_s)
    await service.hand_back()


def run_service(build: Callable[[Mapping[str, str]], Service], name: str) -> int:
    """Build the service from the environment and serve it on uvloop until SIGTERM; the exit code."""
    import uvloop

    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    release_large_buffers()

    async def main() -> int:
        stop = asyncio.Event()
        install_stop_handlers(stop)
        tracing_setup.configure(os.environ, name)  # before build: channels made then carry trace context
        try:
            return await serve(build(os.environ), stop)
        finally:
            tracing_setup.shutdown()  # exports the spans still batched

    try:
        return uvloop.run(main())
    except ConfigError as exc:
        print(f"{name}: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return EXIT_OK
    except ExceptionGroup:
        log.exception(f"{name}: a long-lived loop crashed; stopping")
        return EXIT_FAILURE


class GrpcService(Service):
    """A service whose calls arrive on one gRPC server (with health and reflection) and whose state is
    in Redis: the runner waits for `client` before binding."""

    def __init__(self, server: ServiceServer, listen_address: str, tls: TlsSettings, client: redis.Redis,
                 grace_s: float) -> None:
        self.server = server
        self.client = client
        self._listen_address = listen_address
        self._tls = tls
        self._grace_s = grace_s

    @property
    def grace_s(self) -> float:
        return self._grace_s

    def redis_clients(self) -> Sequence[redis.Redis]:
        return (self.client,)

    async def bind(self) -> str:
        port = self.server.bind(self._listen_address, self._tls)
        host = self._listen_address.rpartition(":")[0]
        return f"{host}:{port}"

    async def start(self) -> None:
        await self.server.server.start()

    async def set_serving(self, serving: bool) -> None:
        await self.server.set_serving(serving)

    async def drain(self, grace_s: float) -> None:
        await self.server.server.stop(grace_s)
