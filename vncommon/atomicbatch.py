"""An all-or-nothing batch of writes run as one Lua script: on one hash slot of a Redis Cluster, or (a
guarded step on one Redis) anywhere.

redis-py's asyncio cluster client runs a `pipeline(transaction=True)` by executing every queued command
through a thread with an event loop of its own; that is slow, and during a failover its re-mapping of
the cluster then waits on a lock of the service's loop from another loop and fails. So on a cluster the
mesh never uses it: the commands of an atomic step are recorded with redis-py's own command methods and
sent as one EVALSHA, which Redis runs without interleaving anything else, like MULTI/EXEC (and, like
MULTI/EXEC, without rolling back what ran before a failing command). Every key must be in the slot of
the routing key (one request's `{id}`): the script's first key.

A guarded batch (`guard=(state key, status field)`) first reads the request's status and runs nothing
when the request is unknown or has ended: one step of a run then needs no status read of its own and no
per-event check. Its reply says which (`GUARD_PASSED`, or the status that refused it, "" if none).
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as redis
from redis.asyncio.client import Pipeline

from vncommon.aio import in_turns
from vncommon.state import lua_is_terminal

# ARGV: the guard's status field ("" for none), the command count, then per command its argument count
# and arguments. Guarded, KEYS[1] is the request's state hash.
_RUN_BATCH = f"""
if ARGV[1] ~= '' then
  local status = redis.call('HGET', KEYS[1], ARGV[1])
  if not status then return '' end
  if {lua_is_terminal("status")} then return status end
end
local pos = 3
for _ = 1, tonumber(ARGV[2]) do
  local argc = tonumber(ARGV[pos])
  redis.call(unpack(ARGV, pos + 1, pos + argc))
  pos = pos + argc + 1
end
return -1
"""
GUARD_PASSED = -1  # the reply of a batch that ran (a refused guarded one answers the status instead)
# Lua unpacks a command's arguments onto its C stack (at most 8,000): writers split larger commands.
MAX_COMMAND_ARGS = 7000


def _encode(value: Any) -> bytes:
    """A command argument as Redis receives it (as redis-py encodes it)."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, float):
        return repr(value).encode()
    return str(value).encode()


class AtomicBatch:
    """Records commands (any redis-py command method) to run atomically on `routing_key`'s slot."""

    def __init__(self, client: redis.Redis, guard: tuple[str, str] | None = None) -> None:
        self._client = client
        self._recorder: Any = Pipeline(None, {}, False, None)  # type: ignore[arg-type]  # only queues
        self._routing_key: str | None = guard[0] if guard else None
        self._guard_field = guard[1] if guard else ""

    def __getattr__(self, name: str) -> Any:
        command = getattr(self._recorder, name)

        def record(*args: Any, **kwargs: Any) -> AtomicBatch:
            if self._routing_key is None and args:
                self._routing_key = str(args[0])
            command(*args, **kwargs)
            return self

        return record

    def __len__(self) -> int:
        return len(self._recorder.command_stack)

    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        """Run the recorded commands in one script; one reply (GUARD_PASSED, or the refusing status)."""
        stack = self._recorder.command_stack
        if not stack:
            return []
        argv: list[bytes] = [self._guard_field.encode(), _encode(len(stack))]
        # A group's dispatch is hundreds of commands of a few KiB each: encoded in turns of the loop.
        async for args, _options in in_turns(stack):
            if len(args) > MAX_COMMAND_ARGS:
                raise ValueError(f"a command of {len(args)} arguments cannot run in a script; split it")
            argv.append(_encode(len(args)))
            argv.extend(_encode(arg) for arg in args)
        self._recorder.command_stack = []
        script = self._client.register_script(_RUN_BATCH)
        return [await script(keys=[self._routing_key or ""], args=argv)]
