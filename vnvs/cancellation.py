"""When a run must stop because its request was cancelled: a caller's cancel, or the request's deadline.

A caller's cancel reaches the run as a control entry on the request's own updates stream (written by
`vncommon.cancel` in the same script that takes the terminal state), so a run waiting for task updates
wakes at once. The deadline is the run's own to enforce: it takes the `cancelled` state with reason
DEADLINE_EXCEEDED through the same transition, so a deadline racing a cancel or a finish still ends the
request exactly once.
"""

from __future__ import annotations

import logging

import redis.asyncio as redis

from vn.v1 import streams_pb2
from vncommon.cancel import CANCELLED_AT_DEADLINE, cancel_request
from vncommon.state import TaskStatus
from vncommon.timeutil import utc_now_ms
from vnvs.ledger import RunCancelled

log = logging.getLogger(__name__)


class CancelCheck:
    """The stop conditions of one run: a cancel update, or its deadline (epoch ms, 0: none)."""

    def __init__(self, client: redis.Redis, request_id: str, ttl_seconds: int, shards: int = 1) -> None:
        self._client = client
        self._request_id = request_id
        self._ttl = ttl_seconds
        self._shards = shards
        self.deadline_at_ms = 0

    def remaining_ms(self) -> int | None:
        """Milliseconds until the deadline (0 once passed); None without a deadline."""
        if not self.deadline_at_ms:
            return None
        return max(0, self.deadline_at_ms - utc_now_ms())

    def on_update(self, update: streams_pb2.TaskUpdate) -> None:
        """Raise RunCancelled for the control update a cancel writes."""
        if update.status == TaskStatus.CANCELLED:
            raise RunCancelled(f"request {self._request_id} was cancelled")

    async def check_deadline(self) -> None:
        """Past the deadline: cancel the request (unless it already ended) and stop the run."""
        if self.remaining_ms() != 0:
            return
        outcome = await cancel_request(self._client, self._request_id, CANCELLED_AT_DEADLINE,
                                       "the request's deadline passed before it ended", self._ttl, self._shards)
        if outcome.cancelled:
            log.info("request cancelled at its deadline", extra={"fields": {"deadlineAtMs": self.deadline_at_ms}})
        raise RunCancelled(f"request {self._request_id} passed its deadline")
