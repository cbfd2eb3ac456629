"""VNVS_INLINE_TASK_BYTES: read and checked at start; a small task document travels in its entry. A large
window of entries is recorded in turns of the event loop and still lands whole."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import redis.asyncio as redis

from vncommon import keys
from vncommon.aio import TURN_ITEMS
from vncommon.errors import ConfigError
from vncommon.slotpipe import guard_passed, step_pipeline
from vncommon.state import REQUEST_HASH
from vnvs.dispatch import Dispatcher, TaskRef
from vnvs.settings import VnvsSettings


def test_the_inline_limit_has_a_default_and_is_read_from_the_environment() -> None:
    assert VnvsSettings.from_env({}).inline_task_bytes == 8192
    assert VnvsSettings.from_env({"VNVS_INLINE_TASK_BYTES": "0"}).inline_task_bytes == 0


@pytest.mark.parametrize("value", ["-1", "big", str(1_048_577)])
def test_a_bad_inline_limit_stops_the_service_naming_it(value: str) -> None:
    with pytest.raises(ConfigError, match="VNVS_INLINE_TASK_BYTES"):
        VnvsSettings.from_env({"VNVS_INLINE_TASK_BYTES": value})


async def test_an_inline_document_writes_no_key_and_a_large_one_is_stored_and_named(
    redis_client: redis.Redis,
) -> None:
    small = TaskRef("r1", 0, "g", "1", "v", "t", payload="<vnml/>")
    large = TaskRef("r1", 0, "g", "2", "v", "t")
    pipe = redis_client.pipeline(transaction=True)
    await Dispatcher(60).queue_tasks(pipe, [(small, b"<vnml/>"), (large, b"<vnml><big/></vnml>")], 3)
    await pipe.execute()
    assert await redis_client.exists(keys.task_xml_key("r1", 0, "1")) == 0
    assert await redis_client.get(keys.task_xml_key("r1", 0, "2")) == b"<vnml><big/></vnml>"
    entries = await redis_client.xrange(keys.DISPATCH_STREAM)
    fields = [{k.decode(): v.decode() for k, v in raw.items()} for _id, raw in entries]
    assert (fields[0]["payload"], fields[0]["payloadKey"]) == ("<vnml/>", "")
    assert (fields[1]["payload"], fields[1]["payloadKey"]) == ("", keys.task_xml_key("r1", 0, "2"))


@contextmanager
def loop_turns() -> Iterator[list[int]]:
    """Counts the turns another task of the loop gets while the block runs (in the list's one item)."""
    turns = [0]

    async def other_task() -> None:
        while True:
            turns[0] += 1
            await asyncio.sleep(0)

    ticking = asyncio.get_running_loop().create_task(other_task())
    try:
        yield turns
    finally:
        ticking.cancel()


def _refs(count: int) -> list[tuple[TaskRef, bytes]]:
    return [(TaskRef("r1", 0, "g", str(n), "v", "t", payload="<vnml/>"), b"<vnml/>") for n in range(count)]


async def test_a_large_window_is_recorded_in_turns_of_the_loop_and_its_guarded_step_lands_whole(
    redis_client: redis.Redis,
) -> None:
    await redis_client.hset(keys.request_state_key("r1"), REQUEST_HASH.status, "started")
    count = 8 * TURN_ITEMS
    pipe = step_pipeline(redis_client, guard=(keys.request_state_key("r1"), REQUEST_HASH.status))
    with loop_turns() as turns:
        await Dispatcher(60).queue_tasks(pipe, _refs(count), 3)  # records only: no I/O to wait on
    assert turns[0] >= count // TURN_ITEMS - 1
    assert guard_passed(await pipe.execute())
    entries = await redis_client.xrange(keys.DISPATCH_STREAM)
    assert [raw[b"taskId"] for _id, raw in entries] == [str(n).encode() for n in range(count)]
    assert await redis_client.hlen(keys.group_tasks_key("r1", 0)) == count


async def test_a_small_group_is_recorded_without_giving_up_the_loop(redis_client: redis.Redis) -> None:
    pipe = step_pipeline(redis_client, guard=(keys.request_state_key("r1"), REQUEST_HASH.status))
    with loop_turns() as turns:
        await Dispatcher(60).queue_tasks(pipe, _refs(TURN_ITEMS), 3)
    assert turns[0] == 0
