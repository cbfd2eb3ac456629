"""Stream reads on the cluster find their slot without asking a server (COMMAND GETKEYS) first."""

from __future__ import annotations

from typing import Any

import redis.asyncio as redis

from tests.conftest import ClusterServer
from vncommon.rediscluster import stream_read_keys
from vncommon.redisconn import create_redis


def test_stream_read_keys_are_the_first_half_after_streams() -> None:
    assert stream_read_keys("XREADGROUP", ("GROUP", "g", "c", "COUNT", 5, "BLOCK", 10, "STREAMS",
                                           "{a}:1", "{a}:2", ">", ">")) == ("{a}:1", "{a}:2")
    assert stream_read_keys("xread", (b"COUNT", b"1", b"streams", b"k", b"0-0")) == (b"k",)
    # a group or consumer literally named "streams" is not the keyword
    assert stream_read_keys("XREADGROUP", ("GROUP", "streams", "streams", "STREAMS", "k", ">")) == ("k",)
    assert stream_read_keys("XADD", ("k", "*", "f", "v")) is None


async def _getkeys_calls(cluster_server: ClusterServer) -> int:
    total = 0
    for port in cluster_server.cluster.masters():
        node = redis.Redis(host="127.0.0.1", port=port)
        stats: Any = await node.info("commandstats")
        total += int(stats.get("cmdstat_command|getkeys", {}).get("calls", 0))
        await node.aclose()
    return total


async def _reset_stats(cluster_server: ClusterServer) -> None:
    for port in cluster_server.cluster.masters():
        node = redis.Redis(host="127.0.0.1", port=port)
        await node.config_resetstat()
        await node.aclose()


async def test_stream_reads_route_by_their_own_keys(cluster_server: ClusterServer) -> None:
    cluster_server.cluster.wait_ready()
    client = create_redis(cluster_server.url, mode="cluster")
    try:
        streams = [f"{{reads}}:{n}" for n in range(2)]
        for stream in streams:
            await client.delete(stream)
            await client.xadd(stream, {"n": stream})
            await client.xgroup_create(stream, "g", id="0")
        await _reset_stats(cluster_server)

        read: Any = await client.xread({stream: "0-0" for stream in streams}, count=10)
        grouped: Any = await client.xreadgroup("g", "c", {stream: ">" for stream in streams}, count=10)
        async with client.pipeline(transaction=False) as pipe:
            pipe.xread({streams[0]: "0-0"})
            piped: Any = await pipe.execute()

        assert sorted(entry[0] for entry in _named(read)) == streams
        assert sorted(entry[0] for entry in _named(grouped)) == streams
        assert len(_named(piped[0])) == 1
        assert await _getkeys_calls(cluster_server) == 0
    finally:
        await client.aclose()


def _named(reply: Any) -> list[tuple[str, Any]]:
    """[(stream name, entries)] from a RESP2 list or a RESP3 map reply."""
    pairs = reply.items() if isinstance(reply, dict) else reply
    return [(name.decode() if isinstance(name, bytes) else name, entries) for name, entries in pairs]
