"""The orchestrator lease: one vnvs instance drives a request at a time, and renews its claim.

The lease is a key holding the owner's instance id with a PX expiry; renew and release compare the
owner first so an instance that lost its lease can never extend or drop another instance's claim.
"""

from __future__ import annotations

import time

import redis.asyncio as redis

from vncommon import keys
from vncommon.streams import text

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class Lease:
    def __init__(self, client: redis.Redis, request_id: str, owner: str, ttl_ms: int) -> None:
        self._client = client
        self._key = keys.lease_key(request_id)
        self.request_id = request_id
        self._owner = owner
        self.ttl_ms = ttl_ms

    async def acquire(self) -> bool:
        """Take the lease if it is free (or already ours); advertise it in the active set."""
        taken = await self._client.set(self._key, self._owner, nx=True, px=self.ttl_ms)
        if not taken and not await self.renew():
            return False
        await self._advertise()
        return True

    async def renew(self) -> bool:
        renewed = bool(await self._client.eval(_RENEW, 1, self._key, self._owner, self.ttl_ms))
        if renewed:
            await self._advertise()
        return renewed

    async def release(self) -> None:
        await self._client.eval(_RELEASE, 1, self._key, self._owner)

    async def ensure_advertised(self) -> None:
        """Another instance holds the lease: make sure the request is in the active set anyway, so that
        if the holder died before advertising it, the request is adopted once the lease lapses."""
        remaining_ms = max(0, int(await self._client.pttl(self._key)))
        expires_at_ms = int(time.time() * 1000) + remaining_ms
        await self._client.zadd(keys.ACTIVE_REQUESTS, {self.request_id: expires_at_ms}, nx=True)

    async def hand_over(self) -> None:
        """Give the request up now: drop the lease and mark it orphaned, so another instance adopts it."""
        await self.release()
        await self._client.zadd(keys.ACTIVE_REQUESTS, {self.request_id: 0})

    async def _advertise(self) -> None:
        expires_at_ms = int(time.time() * 1000) + self.ttl_ms
        await self._client.zadd(keys.ACTIVE_REQUESTS, {self.request_id: expires_at_ms})


async def orphaned_requests(client: redis.Redis, limit: int = 100) -> list[str]:
    """Requests whose holder stopped renewing: their advertised lease expiry is in the past."""
    now_ms = int(time.time() * 1000)
    ids: list[bytes] = await client.zrangebyscore(  # type: ignore[assignment]
        keys.ACTIVE_REQUESTS, "-inf", now_ms, start=0, num=limit)
    return [text(i) for i in ids]
