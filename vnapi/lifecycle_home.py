"""The home lifecycle shard of a vnapi instance: where the events of the requests it makes are published.

Every request id this instance generates is drawn so that its lifecycle shard (`keys.lifecycle_shard_of`)
is the home shard. Its sync waiters then wait on events of that shard only, which its lifecycle hub reads
always; other shards it reads only while a Watch (or a deduplicated sync submission) waits for a request
made elsewhere (vnapi.lifecycle_hub).

The home is taken once at start, before any call is served, from a counter in Redis (`lifecycle:homes`,
INCR modulo STREAM_SHARDS): instances started one after another get different shards as long as there are
no more of them than shards, and a rolling restart keeps them apart too. Several instances may share a
home (more instances than shards, or restarts that wrapped round): that costs reading, never correctness.
When Redis does not answer the INCR, the home is a random shard. With STREAM_SHARDS=1 it is shard 0, the
one lifecycle stream.
"""

from __future__ import annotations

import logging
import random

import redis.asyncio as redis

from vncommon import keys
from vncommon.redisconn import REDIS_ERRORS
from vncommon.requestid import new_request_id

log = logging.getLogger(__name__)


class LifecycleHome:
    """The instance's home shard under STREAM_SHARDS, and the ids it makes (all of them on that shard)."""

    def __init__(self, shards: int, shard: int = 0) -> None:
        self.shards = shards
        self.shard = shard

    @property
    def stream(self) -> str:
        """The home shard's lifecycle stream."""
        return keys.lifecycle_shard_stream(self.shard, self.shards)

    def new_request_id(self) -> str:
        """A fresh uuid4 hex id whose lifecycle events go to the home shard."""
        return new_request_id(self.shard, self.shards)

    async def claim(self, client: redis.Redis) -> None:
        """Take the next home from the shared counter (a random one when Redis does not answer)."""
        if self.shards <= 1:
            return
        try:
            taken = int(await client.incr(keys.LIFECYCLE_HOMES))
            self.shard = (taken - 1) % self.shards
        except REDIS_ERRORS as exc:
            self.shard = random.randrange(self.shards)
            log.warning("home lifecycle shard not taken from Redis; chose one at random",
                        extra={"fields": {"error": str(exc)}})
        log.info("home lifecycle shard taken", extra={"fields": {"shard": self.shard, "shards": self.shards}})
