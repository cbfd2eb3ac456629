"""A guarded step (vncommon.slotpipe) against a real Redis: it runs whole while the request goes on, and
writes nothing once the request is unknown or has ended."""

from __future__ import annotations

import pytest
import redis.asyncio as redis

from vncommon import keys
from vncommon.atomicbatch import MAX_COMMAND_ARGS, AtomicBatch
from vncommon.slotpipe import guard_passed, step_pipeline
from vncommon.state import REQUEST_HASH

REQUEST = "req-guard"
STATE = keys.request_state_key(REQUEST)
GROUP = keys.group_state_key(REQUEST, 0)


def _step(client: redis.Redis) -> object:
    pipe = step_pipeline(client, guard=(STATE, REQUEST_HASH.status))
    pipe.hset(GROUP, mapping={"status": "running"})
    pipe.xadd(keys.DISPATCH_STREAM, {"requestId": REQUEST})  # another slot: a guarded step holds it too
    return pipe


async def test_a_guarded_step_of_a_running_request_writes_everything(redis_client: redis.Redis) -> None:
    await redis_client.hset(STATE, REQUEST_HASH.status, "started")
    replies = await _step(redis_client).execute()  # type: ignore[attr-defined]
    assert guard_passed(replies)
    assert await redis_client.hget(GROUP, "status") == b"running"
    assert await redis_client.xlen(keys.DISPATCH_STREAM) == 1


async def test_a_guarded_step_of_an_ended_request_writes_nothing_and_says_why(redis_client: redis.Redis) -> None:
    for status in ("cancelled", "failed", "succeeded"):
        await redis_client.hset(STATE, REQUEST_HASH.status, status)
        replies = await _step(redis_client).execute()  # type: ignore[attr-defined]
        assert not guard_passed(replies) and replies == [status.encode()]
    assert await redis_client.exists(GROUP) == await redis_client.exists(keys.DISPATCH_STREAM) == 0


async def test_a_guarded_step_of_an_unknown_request_writes_nothing(redis_client: redis.Redis) -> None:
    replies = await _step(redis_client).execute()  # type: ignore[attr-defined]
    assert not guard_passed(replies) and replies == [b""]
    assert await redis_client.exists(GROUP) == await redis_client.exists(keys.DISPATCH_STREAM) == 0


async def test_a_command_too_long_to_unpack_in_a_script_is_refused_before_sending(
    redis_client: redis.Redis
) -> None:
    batch = AtomicBatch(redis_client, (STATE, REQUEST_HASH.status))
    batch.hset(GROUP, mapping={str(i): 1 for i in range(MAX_COMMAND_ARGS)})
    with pytest.raises(ValueError, match="split it"):
        await batch.execute()
