"""Redis Cluster support (REDIS_MODE=cluster): the client, the start-up check, and what differs from one Redis.

The cluster client is redis-py's own `redis.asyncio.cluster.RedisCluster`. It speaks the same command API
as `redis.asyncio.Redis`, so the services hold one client type; the differences they must respect are:

- a MULTI/EXEC pipeline or a Lua script may touch keys of one hash slot only (one request's `{id}` keys,
  or one stream shard's); `spans_slots(client)` says whether a transaction may mix slots (single Redis);
- a non-transactional pipeline is split per node by redis-py (one round trip per node, in parallel;
  commands to one slot keep their order);
- a command over several keys (XREADGROUP over several streams, say) needs them in one slot.
"""

from __future__ import annotations

import logging
from typing import Any, cast

import redis.asyncio as redis
from redis.asyncio.cluster import ClusterPipeline, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import (
    ClusterError,
    RedisClusterException,
    ResponseError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError

from vncommon.config import CLUSTER, REDIS_MODES, SINGLE
from vncommon.errors import ConfigError

__all__ = ["CLUSTER", "REDIS_MODES", "SINGLE"]

log = logging.getLogger(__name__)

# Per-node pools of the cluster client never wait for a free connection (they raise instead), and every
# blocking stream read holds one connection: the cap is only a guard against a runaway.
CLUSTER_MAX_CONNECTIONS_PER_NODE = 4096

# Errors of a cluster that cannot serve right now (no reachable node, a failover in progress, slots
# moving, TRYAGAIN during a resharding): callers back off and retry, as for a lost connection.
CLUSTER_UNAVAILABLE_ERRORS = (ClusterError, RedisClusterException, TryAgainError)


# What redis-py's cluster client raises when a connection it was using is closed under it while it re-maps
# the cluster after a failover (a None writer, a closed transport): a lost connection, to be retried.
_TORN_CONNECTION = (RuntimeError, AttributeError)


def _lost(error: Exception) -> RedisConnectionError:
    return RedisConnectionError(f"cluster connection lost while the cluster was re-mapped: {error}")


class _Pipeline(ClusterPipeline):
    async def execute(self, raise_on_error: bool = True, allow_redirections: bool = True) -> list[Any]:
        try:
            return await super().execute(raise_on_error, allow_redirections)
        except _TORN_CONNECTION as exc:
            raise _lost(exc) from exc


def _token(arg: Any) -> str:
    return (arg.decode() if isinstance(arg, bytes) else str(arg)).upper()


def stream_read_keys(command: str, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
    """The stream keys of an XREAD or XREADGROUP (the first half of what follows STREAMS); None for any
    other command.

    Redis flags both as having "movable keys", for which redis-py asks a server (COMMAND GETKEYS) before
    every call: one more round trip per stream read, all of them to the same node.
    """
    name = command.upper()
    if name == "XREADGROUP":
        options = 3  # GROUP <group> <consumer>: never read as the STREAMS keyword
    elif name == "XREAD":
        options = 0
    else:
        return None
    for index in range(options, len(args)):
        if _token(args[index]) == "STREAMS":
            streams = args[index + 1:]
            return tuple(streams[:len(streams) // 2])
    return None


class MeshRedisCluster(RedisCluster):
    """redis-py's RedisCluster; a connection torn down under a command during a failover is reported as
    a lost connection (which every caller retries), not as an internal error that would fail a request.
    Stream reads find their slot from their own arguments (`stream_read_keys`)."""

    async def _determine_slot(self, command: str, *args: Any) -> int:
        keys = stream_read_keys(command, args)
        if not keys:
            return await super()._determine_slot(command, *args)
        slots = {self.keyslot(key) for key in keys}
        if len(slots) != 1:
            raise RedisClusterException(f"{command} - all keys must map to the same key slot")
        return slots.pop()

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().execute_command(*args, **kwargs)
        except _TORN_CONNECTION as exc:
            raise _lost(exc) from exc

    def pipeline(self, transaction: Any | None = None, shard_hint: Any | None = None) -> ClusterPipeline:
        if shard_hint:
            raise RedisClusterException("shard_hint is deprecated in cluster mode")
        return _Pipeline(self, transaction)  # type: ignore[abstract]  # as RedisCluster.pipeline makes it


def create_cluster_client(url: str, max_connections: int) -> redis.Redis:
    """A RedisCluster client from any node's URL (password and rediss:// as in the URL); it finds the rest.

    Typed as `redis.Redis` because it serves the same commands; `is_cluster` tells them apart.
    """
    del max_connections  # per-node pools do not queue; see CLUSTER_MAX_CONNECTIONS_PER_NODE
    client = MeshRedisCluster.from_url(
        url,
        max_connections=CLUSTER_MAX_CONNECTIONS_PER_NODE,
        retry=Retry(ExponentialWithJitterBackoff(base=0.05, cap=2.0), retries=8),
        health_check_interval=30,
        # As for one Redis: no socket timeout. redis-py's cluster default (5 s) would cut blocking stream
        # reads of up to DEFAULT_BLOCK_MS at their end and lose their replies (entries left pending).
        socket_timeout=None,
        socket_keepalive=True,
        socket_connect_timeout=5,
    )
    return cast(redis.Redis, client)


def is_cluster(client: Any) -> bool:
    """True for a cluster client, or a pipeline of one."""
    return isinstance(client, RedisCluster) or type(client).__name__ == "ClusterPipeline"


def spans_slots(client: Any) -> bool:
    """Whether one MULTI/EXEC (or script) may touch keys of different hash slots: only on a single Redis."""
    return not is_cluster(client)


async def check_mode(client: Any) -> None:
    """After the first answer: a single client must not talk to a cluster node, and the other way round.

    A cluster client against a plain Redis fails while connecting (redis-py: "Cluster mode is not enabled
    on this node"); `describe_mode_error` turns that into the message naming REDIS_MODE.
    """
    if is_cluster(client):
        return
    try:
        info: Any = await client.info("cluster")
    except ResponseError:
        return  # INFO refused (ACL): nothing to compare
    if int(info.get("cluster_enabled", 0)):
        raise ConfigError("REDIS_MODE=single but REDIS_URL points at a Redis Cluster node; set REDIS_MODE=cluster")


def describe_mode_error(error: Exception) -> ConfigError | None:
    """A ConfigError naming REDIS_MODE when `error` says the server is not a cluster; else None."""
    if isinstance(error, RedisClusterException) and "cluster mode is not enabled" in str(error).lower():
        return ConfigError("REDIS_MODE=cluster but REDIS_URL points at a Redis without cluster mode; "
                           "set REDIS_MODE=single or point REDIS_URL at a cluster node")
    return None
