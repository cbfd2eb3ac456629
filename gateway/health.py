"""GET /healthz: is Redis answering PING and vnapi reporting SERVING? Both are asked at once."""

from __future__ import annotations

import asyncio
import logging

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from vnclient import ValuationClient
from vncommon.errors import VnError

log = logging.getLogger(__name__)


def create_health_redis(url: str, timeout_s: float) -> redis.Redis:
    """A small client used only for PING: short timeouts and no retries, so an outage shows at once."""
    return redis.Redis.from_url(
        url,
        max_connections=4,
        socket_connect_timeout=timeout_s,
        socket_timeout=timeout_s,
        retry=Retry(NoBackoff(), retries=0),
    )


async def redis_answers(client: redis.Redis, timeout_s: float) -> bool:
    try:
        async with asyncio.timeout(timeout_s):
            return bool(await client.ping())
    except Exception as exc:  # any failure (refused, timeout, auth) means "down"
        log.warning("health: redis not answering", extra={"fields": {"error": str(exc) or type(exc).__name__}})
        return False


async def vnapi_answers(client: ValuationClient, timeout_s: float) -> bool:
    try:
        return await client.check_health(timeout=timeout_s)
    except VnError as exc:
        log.warning("health: vnapi not answering", extra={"fields": {"error": exc.reason}})
        return False


async def down_dependencies(client: ValuationClient, redis_client: redis.Redis, timeout_s: float) -> list[str]:
    """Names of the dependencies that did not answer in time (empty when all are up)."""
    redis_ok, vnapi_ok = await asyncio.gather(
        redis_answers(redis_client, timeout_s), vnapi_answers(client, timeout_s)
    )
    return [name for name, ok in (("redis", redis_ok), ("vnapi", vnapi_ok)) if not ok]
