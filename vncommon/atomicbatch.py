"""An all-or-nothing batch of writes to one hash slot on a Redis Cluster, run as one Lua script.

redis-py's asyncio cluster client runs a `pipeline(transaction=True)` by executing every queued command
through a thread with an event loop of its own; that is slow, and during a failover its re-mapping of
the cluster then waits on a lock of the service's loop from another loop and fails. So on a cluster the
mesh never uses it: the commands of an atomic step are recorded with redis-py's own command methods and
sent as one EVALSHA, which Redis runs without interleaving anything else, like MULTI/EXEC (and, like
MULTI/EXEC, without rolling back what ran before a failing command). Every key must be in the slot of
the routing key (one request's `{id}`): the script's first key.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as redis
from redis.asyncio.client import Pipeline

# ARGV: command count, then per command its argument count and arguments.
_RUN_BATCH = """
local pos = 2
for _ = 1, tonumber(ARGV[1]) do
  local argc = tonumber(ARGV[pos])
  redis.call(unpack(ARGV, pos + 1, pos + argc))
  pos = pos + argc + 1
end
return tonumber(ARGV[1])
"""


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

    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self._recorder: Any = Pipeline(None, {}, False, None)  # type: ignore[arg-type]  # only queues
        self._routing_key: str | None = None

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
        """Run the recorded commands in one script; one reply (the command count)."""
        stack = self._recorder.command_stack
        if not stack:
            return []
        argv: list[bytes] = [_encode(len(stack))]
        for args, _options in stack:
            argv.append(_encode(len(args)))
            argv.extend(_encode(arg) for arg in args)
        self._recorder.command_stack = []
        script = self._client.register_script(_RUN_BATCH)
        return [await script(keys=[self._routing_key or ""], args=argv)]
