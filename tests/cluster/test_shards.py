"""STREAM_SHARDS: names, a request's shard, and one consumer reading every shard fairly.

These run against whichever Redis the session has (`--redis-mode=cluster` runs them on the cluster,
where every shard read is a command of its own).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter

import redis.asyncio as redis
from redis.crc import key_slot

from tests.cluster.stream_support import fill_stream
from vnapi.lifecycle_hub import RESYNC, LifecycleHub
from vncommon import keys, lifecycle
from vncommon.shardedgroup import ShardedGroup

GROUP = "g"


def test_one_shard_keeps_todays_names() -> None:
    assert keys.ingest_stream("abc", 1) == keys.INGEST_STREAM
    assert keys.dispatch_streams([1]) == [keys.DISPATCH_STREAM]
    assert keys.deadletter_stream(keys.DISPATCH_STREAM) == keys.DEADLETTER_STREAM


def test_shards_have_their_own_tags_spread_evenly_over_the_slot_space() -> None:
    streams = keys.dispatch_streams([6])
    assert len(set(streams)) == 6 and all("{s" in name for name in streams)
    # Three masters with equal slot ranges get two shards each.
    assert Counter(key_slot(name.encode()) * 3 // keys.SLOTS for name in streams) == {0: 2, 1: 2, 2: 2}
    assert keys.deadletter_stream(streams[3]).endswith(streams[3].rpartition(":")[2])


def test_a_requests_entries_all_go_to_the_shard_of_its_id() -> None:
    for request_id in ("a", "b", "0123456789abcdef"):
        shard = keys.shard_of(request_id, 6)
        assert keys.ingest_stream(request_id, 6).endswith("{" + keys.shard_tag(shard, 6) + "}")
        assert keys.dispatch_stream(request_id, 6).endswith("{" + keys.shard_tag(shard, 6) + "}")
    assert len({keys.shard_of(f"r{i}", 6) for i in range(100)}) == 6


def test_draining_layouts_add_their_streams_once() -> None:
    assert keys.ingest_streams([6, 1])[-1] == keys.INGEST_STREAM
    assert len(keys.ingest_streams([6, 1, 6])) == 7


async def test_a_busy_shard_does_not_starve_a_quiet_one(
        redis_client: redis.Redis, groups: list[ShardedGroup]) -> None:
    streams = keys.dispatch_streams([3])
    group = ShardedGroup(redis_client, streams, GROUP, "c1")
    groups.append(group)
    await group.ensure_group()
    await fill_stream(redis_client, streams[0], 300)
    await fill_stream(redis_client, streams[2], 2)
    read: list[str] = []
    for _ in range(3):  # on a cluster each shard answers on its own; the quiet one within a read or two
        batch = await group.read_new(6, 100)
        assert len(batch) <= 6
        read.extend(entry.fields["stream"] for entry in batch)
    assert read.count(streams[2]) == 2 and read.count(streams[0]) <= 12


async def test_entries_of_every_shard_are_read_acknowledged_and_handed_back(
        redis_client: redis.Redis, groups: list[ShardedGroup]) -> None:
    streams = keys.dispatch_streams([4])
    group = ShardedGroup(redis_client, streams, GROUP, "c1")
    groups.append(group)
    await group.ensure_group()
    for stream in streams:
        await fill_stream(redis_client, stream, 5)
    seen: list[str] = []
    while len(seen) < 20:
        batch = await group.read_new(7, 100)
        assert batch, "an entry was never read"
        seen.extend(entry.entry_id for entry in batch)
    assert len(set(seen)) == 20  # ids are qualified: equal ids of different shards stay apart
    assert {group.stream_of(entry_id) for entry_id in seen} == set(streams)
    await group.ack(*seen[:10])
    pending = [int((await redis_client.xpending(stream, GROUP))["pending"]) for stream in streams]
    assert sum(pending) == 10
    handed = await group.hand_back(60_000, 100)
    assert sorted(handed) == sorted(seen[10:])


async def test_idle_entries_of_every_shard_are_reclaimed_in_one_pass(
        redis_client: redis.Redis, groups: list[ShardedGroup]) -> None:
    streams = keys.ingest_streams([3])
    dead = ShardedGroup(redis_client, streams, GROUP, "dead")
    groups.append(dead)
    await dead.ensure_group()
    for stream in streams:
        await fill_stream(redis_client, stream, 2)
    taken: list[str] = []
    while len(taken) < 6:
        taken.extend(entry.entry_id for entry in await dead.read_new(6, 100))
    live = ShardedGroup(redis_client, streams, GROUP, "live")
    groups.append(live)
    cursor, claimed = "0-0", []
    for _ in range(10):
        batch = await live.autoclaim(0, cursor, 10)
        claimed.extend(entry.entry_id for entry in batch.entries)
        cursor = batch.cursor
        if cursor == "0-0":
            break
    assert cursor == "0-0" and sorted(claimed) == sorted(taken)
    assert [await live.keep_claimed(entry_id) for entry_id in claimed] == [True] * 6


async def test_a_consumer_reading_new_and_old_layouts_drains_the_old_streams(
        redis_client: redis.Redis, groups: list[ShardedGroup]) -> None:
    """STREAM_SHARDS changed from 1 to 6: entries left in the old stream are still read (STREAM_SHARDS_DRAIN)."""
    await fill_stream(redis_client, keys.DISPATCH_STREAM, 3)
    group = ShardedGroup(redis_client, keys.dispatch_streams([6, 1]), GROUP, "c1")
    groups.append(group)
    await group.ensure_group()
    await fill_stream(redis_client, keys.dispatch_stream("new", 6), 2)
    read: list[str] = []
    for _ in range(10):
        read.extend(entry.fields["stream"] for entry in await group.read_new(10, 50))
        if len(read) == 5:
            break
    assert Counter(read) == {keys.DISPATCH_STREAM: 3, keys.dispatch_stream("new", 6): 2}


async def test_the_lifecycle_hub_hears_every_shard_its_subscribers_need(redis_client: redis.Redis) -> None:
    hub = LifecycleHub(redis_client, block_ms=100, layouts=[6])
    stop = asyncio.Event()
    reader = asyncio.create_task(hub.run(stop))
    ids = [f"request-{number}" for number in range(12)]
    streams = {keys.lifecycle_stream(request_id, 6) for request_id in ids}
    assert len(streams) > 3
    try:
        await asyncio.wait_for(hub.ready.wait(), 10)
        assert hub.reading == {keys.lifecycle_shard_stream(0, 6)}  # the home shard only, until asked
        with contextlib.ExitStack() as stack:
            subscriptions = [stack.enter_context(hub.subscribe(request_id)) for request_id in ids]
            for subscription in subscriptions:  # each shard's reading starts and says so
                if subscription.streams[0] != keys.lifecycle_shard_stream(0, 6):
                    assert await subscription.get(within=10) is RESYNC
            assert hub.reading == streams | {keys.lifecycle_shard_stream(0, 6)}
            for request_id in ids:
                await lifecycle.publish(redis_client, lifecycle.new_event(request_id, "started"), shards=6)
            heard = [await subscription.get(within=10) for subscription in subscriptions]
            assert [event.request_id for event in heard if event is not None] == ids
    finally:
        stop.set()
        await asyncio.wait_for(reader, 10)
