"""Health follows Redis: a service that cannot reach Redis (or its cluster) reports NOT_SERVING until it can.

Load balancers and the gRPC round-robin of the callers (`vncommon.balancing`) then send no work to an
instance that cannot do it. Each change is logged once, not every probe.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

import redis.asyncio as redis

from vncommon.aio import sleep_or_stop
from vncommon.redisconn import REDIS_ERRORS

log = logging.getLogger(__name__)

PROBE_INTERVAL_S = 2.0
PROBE_TIMEOUT_S = 2.0


async def redis_answers(clients: Sequence[redis.Redis], timeout_s: float = PROBE_TIMEOUT_S) -> bool:
    try:
        async with asyncio.timeout(timeout_s):
            for client in clients:
                await client.ping()
        return True
    except (TimeoutError, *REDIS_ERRORS):
        return False


async def follow_redis(clients: Sequence[redis.Redis], set_serving: Callable[[bool], Awaitable[None]],
                       stop: asyncio.Event, interval_s: float = PROBE_INTERVAL_S) -> None:
    """Until `stop`: NOT_SERVING while Redis does not answer, SERVING again once it does."""
    healthy = True
    while not await sleep_or_stop(stop, interval_s):
        answers = await redis_answers(clients)
        if answers == healthy or stop.is_set():
            continue
        healthy = answers
        if healthy:
            log.info("redis answers again; health SERVING")
        else:
            log.warning("redis does not answer; health NOT_SERVING until it does")
        await set_serving(healthy)
