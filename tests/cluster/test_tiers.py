"""Dispatch tiers (request priorities): names, the weighted order of fetch rounds, and one consumer
reading every tier (`vncommon.tieredgroup`).

These run against whichever Redis the session has (`--redis-mode=cluster` runs them on the cluster,
where each tier is read with commands of its own).
"""

from __future__ import annotations

from collections import Counter

import redis.asyncio as redis
from redis.crc import key_slot

from tests.cluster.stream_support import fill_stream
from vncommon import keys
from vncommon.rediscluster import is_cluster
from vncommon.state import Priority
from vncommon.tieredgroup import TieredGroup, lead_tier, tier_order

GROUP = "g"


def test_normal_keeps_todays_names_and_each_priority_has_its_own_streams() -> None:
    assert keys.dispatch_stream("abc", 1) == keys.DISPATCH_STREAM
    assert keys.dispatch_stream("abc", 1, Priority.HIGH) == "{stream:task:dispatch}:high"
    assert keys.dispatch_tiers([1]) == [["{stream:task:dispatch}:high"], [keys.DISPATCH_STREAM],
                                        ["{stream:task:dispatch}:batch"]]
    assert keys.deadletter_stream(keys.dispatch_stream("abc", 1, Priority.BATCH)) == "{stream:task:deadletter}:batch"
    sharded = keys.dispatch_stream("abc", 4, Priority.HIGH)
    assert keys.deadletter_stream(sharded).startswith("stream:task:deadletter:high:{")
    assert len(set(keys.all_dispatch_streams([4]))) == 12


def test_the_tiers_of_one_shard_share_its_slot_and_shards_keep_their_own() -> None:
    for shards in (1, 6):
        for request_id in ("a", "b", "c"):
            slots = {key_slot(keys.dispatch_stream(request_id, shards, p).encode()) for p in Priority}
            assert len(slots) == 1
    assert len({key_slot(stream.encode()) for stream in keys.dispatch_streams([6], Priority.HIGH)}) == 6


def test_every_16_rounds_normal_leads_3_and_batch_leads_1() -> None:
    leads = Counter(lead_tier(number, 3) for number in range(160))
    assert leads == {0: 120, 1: 30, 2: 10}
    assert tier_order(15, 3) == [2, 0, 1] and tier_order(3, 3) == [1, 0, 2] and tier_order(0, 3) == [0, 1, 2]


async def _tiered(client: redis.Redis, groups: list[TieredGroup], shards: int = 1) -> TieredGroup:
    group = TieredGroup(client, keys.dispatch_tiers([shards]), GROUP, "c1")
    groups.append(group)
    await group.ensure_group()
    return group


def _priority_of(stream: str) -> str:
    return next(p.value for p in Priority if stream in keys.dispatch_streams([1, 3], p))


async def test_waiting_high_work_is_read_first_and_the_batch_is_exact(
        redis_client: redis.Redis, groups: list[TieredGroup]) -> None:
    group = await _tiered(redis_client, groups)
    tiers = keys.dispatch_tiers([1])
    await fill_stream(redis_client, tiers[2][0], 50)  # batch, written first
    await fill_stream(redis_client, tiers[1][0], 50)
    await fill_stream(redis_client, tiers[0][0], 8)  # high, written last
    first = await group.read_new(10, 100)
    # Nothing was known to wait: one blocking read over every tier, handed out highest first.
    assert [_priority_of(e.fields["stream"]) for e in first[:8]] == ["high"] * 8
    read = first + [e for _ in range(3) for e in await group.read_new(10, 100)]
    assert Counter(_priority_of(e.fields["stream"]) for e in read)["high"] == 8
    # Work waits in every tier now: each round reads exactly its batch, in the round's tier order.
    group = await _tiered(redis_client, groups)
    before = await redis_client.xpending(tiers[1][0], GROUP)
    batch = await group.read_new(5, 100)
    assert len(batch) == 5
    after = await redis_client.xpending(tiers[1][0], GROUP)
    assert int(after["pending"]) + int((await redis_client.xpending(tiers[2][0], GROUP))["pending"]) \
        >= int(before["pending"]) + 5


async def test_batch_work_advances_under_a_steady_stream_of_high_work(
        redis_client: redis.Redis, groups: list[TieredGroup]) -> None:
    group = await _tiered(redis_client, groups, shards=3)
    high, _, batch = keys.dispatch_tiers([3])
    await fill_stream(redis_client, batch[1], 20)
    read: list[str] = []
    for _ in range(64):
        for stream in high:  # high work keeps arriving faster than it is read
            await fill_stream(redis_client, stream, 4)
        read.extend(_priority_of(e.fields["stream"]) for e in await group.read_new(4, 100))
    counts = Counter(read)
    if is_cluster(redis_client):
        # A cluster splits each read between the shards (one script per shard): in a round that batch
        # leads, the shard holding batch work reads its share of the batch, 2 of 4, batch first.
        assert counts["batch"] >= 2 and counts["high"] >= 150, counts
    else:
        # 64 reads of 4: batch leads 4 of them (r = 15, 31, 47, 63) and fills them; the rest is high.
        assert counts["batch"] >= 16 and counts["high"] >= 200, counts


async def test_entries_of_every_tier_are_acknowledged_reclaimed_and_handed_back(
        redis_client: redis.Redis, groups: list[TieredGroup]) -> None:
    group = await _tiered(redis_client, groups, shards=2)
    for stream in keys.all_dispatch_streams([2]):
        await fill_stream(redis_client, stream, 2)
    seen = []
    while len(seen) < 12:
        batch = await group.read_new(5, 100)
        assert batch, "an entry was never read"
        seen.extend(batch)
    assert Counter(group.tier_of(e.entry_id) for e in seen) == {0: 4, 1: 4, 2: 4}
    await group.ack(*(e.entry_id for e in seen[:6]))
    other = await _tiered(redis_client, groups, shards=2)
    cursor, claimed = "0-0", []
    for _ in range(20):
        claim = await other.autoclaim(0, cursor, 10)
        claimed.extend(e.entry_id for e in claim.entries)
        cursor = claim.cursor
        if cursor == "0-0":
            break
    assert sorted(claimed) == sorted(e.entry_id for e in seen[6:])
    assert sorted(await other.hand_back(0, 100)) == sorted(claimed)
