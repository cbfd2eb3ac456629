"""VNVS_INLINE_TASK_BYTES: read and checked at start; a small task document travels in its entry."""

from __future__ import annotations

import pytest
import redis.asyncio as redis

from vncommon import keys
from vncommon.errors import ConfigError
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
    Dispatcher(60).queue_tasks(pipe, [(small, b"<vnml/>"), (large, b"<vnml><big/></vnml>")], 3)
    await pipe.execute()
    assert await redis_client.exists(keys.task_xml_key("r1", 0, "1")) == 0
    assert await redis_client.get(keys.task_xml_key("r1", 0, "2")) == b"<vnml><big/></vnml>"
    entries = await redis_client.xrange(keys.DISPATCH_STREAM)
    fields = [{k.decode(): v.decode() for k, v in raw.items()} for _id, raw in entries]
    assert (fields[0]["payload"], fields[0]["payloadKey"]) == ("<vnml/>", "")
    assert (fields[1]["payload"], fields[1]["payloadKey"]) == ("", keys.task_xml_key("r1", 0, "2"))
