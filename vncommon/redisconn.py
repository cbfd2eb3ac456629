"""One Redis connection pool per process, with reconnect backoff built in."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import hiredis
import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from vncommon.backoff import Backoff
from vncommon.rediscluster import (
    CLUSTER,
    CLUSTER_UNAVAILABLE_ERRORS,
    SINGLE,
    check_mode,
    create_cluster_client,
    describe_mode_error,
)

log = logging.getLogger(__name__)

# Redis being away or unable to serve for now: callers back off and retry (the cluster's own errors,
# a failover or a slot migration in progress, only ever occur with REDIS_MODE=cluster).
REDIS_ERRORS = (RedisConnectionError, RedisTimeoutError, OSError, *CLUSTER_UNAVAILABLE_ERRORS)


# How long a command may wait for a free pooled connection before failing with a Redis error.
POOL_WAIT_S = 10.0
# Values at least this long go to the socket as they are (the Python packer keeps them as separate
# parts) instead of being copied into one packed command: a 10 MiB SET must not hold the body twice.
LARGE_VALUE_BYTES = 64 * 1024


HEALTH_CHECK_S = 30


_FAST_CLASSES: dict[type[Any], type[Any]] = {}


def _with_hiredis_packing(connection_class: type[Any]) -> type[Any]:
    """The pool's connection class, packing commands with hiredis's C packer.

    redis-py's asyncio connections pack commands in Python (its sync client already uses hiredis);
    profiling put that packing at the top of every service's CPU time.
    """
    if connection_class not in _FAST_CLASSES:

        def pack_command(self: Any, *args: Any) -> list[bytes]:
            if any(isinstance(arg, bytes) and len(arg) >= LARGE_VALUE_BYTES for arg in args):
                return connection_class.pack_command(self, *args)  # type: ignore[no-any-return]
            if isinstance(args[0], str) and " " in args[0]:
                args = (*args[0].encode().split(), *args[1:])
            try:
                return [hiredis.pack_command(args)]
            except TypeError:  # memoryview, bytearray, ...: the general packer handles them
                return connection_class.pack_command(self, *args)  # type: ignore[no-any-return]

        _FAST_CLASSES[connection_class] = type(f"Hiredis{connection_class.__name__}", (connection_class,),
                                               {"pack_command": pack_command})
    return _FAST_CLASSES[connection_class]


def create_redis(url: str, max_connections: int = 128, mode: str = SINGLE) -> redis.Redis:
    """One pool per process. Commands wait for a free connection (rather than failing when more are in
    flight than the pool holds) and retry with jittered backoff across short Redis outages.

    No socket read timeout (redis-py's default is 5 s): the timer runs on the event loop, so a loop that
    was busy for longer than it fires before the reply that already arrived is read, and a blocking
    XREAD/XREADGROUP of up to DEFAULT_BLOCK_MS would fail although Redis answered on time. A Redis that
    went away is noticed by TCP keepalive (redis-py's probes: about 45 s) and by the health check PING on
    a connection idle for HEALTH_CHECK_S; callers' own deadlines bound everything else.
    """
    if mode == CLUSTER:
        return create_cluster_client(url, max_connections)
    pool = redis.BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=POOL_WAIT_S,
        retry=Retry(ExponentialWithJitterBackoff(base=0.05, cap=2.0), retries=8),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
        health_check_interval=HEALTH_CHECK_S,
        socket_timeout=None,
        socket_keepalive=True,
        socket_connect_timeout=5,
    )
    pool.connection_class = _with_hiredis_packing(pool.connection_class)
    return redis.Redis.from_pool(pool)  # the client owns the pool: aclose() closes its connections


async def wait_for_redis(client: redis.Redis, attempts: int = 0) -> None:
    """Ping until Redis answers; attempts=0 means forever (services never exit for a Redis outage).

    Once it answers, a Redis that is not what REDIS_MODE says raises ConfigError (the service exits 78).
    """
    backoff = Backoff()
    tried = 0
    while True:
        try:
            await client.ping()
            await check_mode(client)
            return
        except REDIS_ERRORS as exc:
            wrong_mode = describe_mode_error(exc)
            if wrong_mode is not None:
                raise wrong_mode from None
            tried += 1
            if attempts and tried >= attempts:
                raise
            delay = backoff.next()
            log.warning("redis not reachable, retrying", extra={"fields": {"error": str(exc), "delayS": delay}})
            await asyncio.sleep(delay)
