"""Running a service process: uvloop, signal handling, named exit codes, configuration errors."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Mapping

from vncommon.errors import ConfigError

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_CONFIG = 78  # EX_CONFIG from sysexits.h: an operator must fix the environment
# gRPC's completion-queue thread shares the GIL with the event loop. With Python's default 5 ms switch
# interval the loop, after releasing the GIL around a socket write, can wait milliseconds to get it
# back; profiling showed Redis writes costing 360 us instead of 50 us. A short interval fixes that.
GIL_SWITCH_INTERVAL_S = 0.0002

log = logging.getLogger(__name__)


def install_stop_handlers(stop: asyncio.Event) -> None:
    """SIGTERM and SIGINT set `stop`; the service then shuts down in order."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)


def run_service(name: str, main: Callable[[Mapping[str, str], asyncio.Event], Awaitable[None]]) -> int:
    """Run `main(env, stop)` on uvloop until it returns; map configuration errors to EXIT_CONFIG."""
    import uvloop

    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    async def runner() -> None:
        stop = asyncio.Event()
        install_stop_handlers(stop)
        await main(os.environ, stop)

    try:
        uvloop.run(runner())
    except ConfigError as exc:
        print(f"{name}: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return EXIT_OK
    return EXIT_OK
