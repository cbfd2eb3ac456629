"""A Redis Cluster for the tests that need one whatever `--redis-mode` says: the session's own when it
is a cluster, else a private one for this directory's tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import redis.asyncio as redis

from tests.conftest import ClusterServer, RedisServer
from vncommon.shardedgroup import ShardedGroup


@pytest.fixture(scope="session")
def cluster_server(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterServer]:
    if isinstance(redis_server, ClusterServer):
        yield redis_server
        return
    server = ClusterServer(tmp_path_factory.mktemp("cluster"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def cluster_client(cluster_server: ClusterServer) -> AsyncIterator[redis.Redis]:
    cluster_server.cluster.wait_ready()
    client = cluster_server.client()
    await client.flushall()
    yield client
    await client.aclose()


@pytest.fixture
async def groups() -> AsyncIterator[list[ShardedGroup]]:
    """Consumer groups a test made over several streams; their outstanding reads stop when it ends."""
    made: list[ShardedGroup] = []
    yield made
    for group in made:
        await group.cancel_reads()
