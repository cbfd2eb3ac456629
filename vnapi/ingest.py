"""The ingest consumer: hands each stored request to a vnvs instance (SPEC section 2, step 2).

Fetch: XAUTOCLAIM entries a dead consumer left pending, then XREADGROUP new ones.
Execute: publish `received` once, then call Orchestrate until a vnvs instance takes responsibility.
Settle: XACK, and only then. An entry whose Orchestrate keeps failing stays pending and is retried,
so a request is never lost; calling Orchestrate twice is harmless (vnvs answers ALREADY_RUNNING).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import grpc
import redis.asyncio as redis

from vn.v1 import orchestrator_pb2, orchestrator_pb2_grpc, streams_pb2
from vnapi.metrics import INGEST_LAG
from vnapi.settings import VnapiSettings
from vncommon import keys, lifecycle
from vncommon.aio import sleep_or_stop, until_stopped
from vncommon.backoff import Backoff
from vncommon.logs import log_context
from vncommon.redisconn import REDIS_ERRORS
from vncommon.state import REQUEST_HASH, Status
from vncommon.streams import from_fields, text
from vncommon.streamtrim import StreamUpkeep

log = logging.getLogger(__name__)

BACKOFF_START_S = 0.1
BACKOFF_CAP_S = 5.0
TRIM_INTERVAL_S = 10.0
TAKEN = frozenset({
    orchestrator_pb2.ORCHESTRATE_OUTCOME_ACCEPTED,
    orchestrator_pb2.ORCHESTRATE_OUTCOME_ALREADY_RUNNING,
    orchestrator_pb2.ORCHESTRATE_OUTCOME_ALREADY_FINISHED,
})

# -1: the request is gone; 0: not due (already published, or the request moved on); 1: publish now.
_RECEIVED_GUARD = f"""
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if redis.call('HGET', KEYS[1], '{REQUEST_HASH.status}') ~= '{Status.RECEIVED}' then return 0 end
return redis.call('HSETNX', KEYS[1], '{REQUEST_HASH.received_published}', '1')
"""

Entry = tuple[str, dict[Any, Any]]


class IngestConsumer:
    """One consumer of `stream:request:ingest` in group `orchestrator-main`."""

    def __init__(
        self,
        client: redis.Redis,
        settings: VnapiSettings,
        orchestrator: orchestrator_pb2_grpc.OrchestratorServiceStub,
    ) -> None:
        self._client = client
        self._settings = settings
        self._orchestrator = orchestrator
        self._consumer = settings.consumer_name
        self._inflight: dict[str, asyncio.Task[None]] = {}
        self._claim_idle_ms = settings.ingest_claim_idle_ms
        self._claim_interval_s = max(0.05, min(self._claim_idle_ms / 2000, 5.0))
        self._backoff_cap_s = min(BACKOFF_CAP_S, self._claim_idle_ms / 3000)
        self._claim_cursor = "0-0"
        self._next_claim = 0.0
        self._upkeep = StreamUpkeep(client, keys.INGEST_STREAM, keys.INGEST_GROUP, keys.INGEST_MAXLEN,
                                    interval_s=TRIM_INTERVAL_S)
        self._stop = asyncio.Event()
        self.acked = 0

    @property
    def inflight(self) -> int:
        return len(self._inflight)

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until `stop`; then let in-flight Orchestrate calls finish and return."""
        self._stop = stop
        backoff = Backoff(BACKOFF_START_S, BACKOFF_CAP_S)
        group_ready = False
        while not stop.is_set():
            try:
                if not group_ready:
                    await self._ensure_group()
                    group_ready = True
                await self._wait_for_slot()
                for entry in await self._fetch():
                    self._start(entry)
                await self._maybe_trim()
                backoff.reset()
            except REDIS_ERRORS as exc:
                delay = backoff.next()
                log.warning("ingest fetch failed, retrying", extra={"fields": {"error": str(exc), "delayS": delay}})
                await sleep_or_stop(stop, delay)
        await self.drain()

    async def drain(self) -> None:
        """Wait for the entries being handled; those not settled stay pending for a reclaim."""
        if self._inflight:
            await asyncio.wait(list(self._inflight.values()))

    async def _ensure_group(self) -> None:
        try:
            await self._client.xgroup_create(keys.INGEST_STREAM, keys.INGEST_GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def _wait_for_slot(self) -> None:
        while len(self._inflight) >= self._settings.ingest_concurrency and not self._stop.is_set():
            stopping = asyncio.ensure_future(self._stop.wait())
            try:
                await asyncio.wait({*self._inflight.values(), stopping}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                stopping.cancel()

    async def _fetch(self) -> list[Entry]:
        free = self._settings.ingest_concurrency - len(self._inflight)
        if free <= 0:
            return []
        loop = asyncio.get_running_loop()
        if loop.time() >= self._next_claim:
            claimed = await self._claim(free)
            if claimed:
                return claimed
        block_ms = max(1, min(self._settings.common.default_block_ms, int(self._claim_interval_s * 1000)))
        read = self._client.xreadgroup(
            keys.INGEST_GROUP, self._consumer, {keys.INGEST_STREAM: ">"}, count=free, block=block_ms
        )
        # Cancelling a read on stop may leave entries delivered to us unseen: they sit in our pending
        # list and are reclaimed like those of a dead consumer, so none is lost.
        _done, result = await until_stopped(read, self._stop)
        streams: Any = result or []
        return [(text(entry_id), fields) for _stream, entries in streams for entry_id, fields in entries]

    async def _claim(self, count: int) -> list[Entry]:
        """Take over entries idle longer than the claim threshold (their consumer is presumed dead)."""
        reply: Any = await self._client.xautoclaim(
            keys.INGEST_STREAM, keys.INGEST_GROUP, self._consumer, self._claim_idle_ms,
            start_id=self._claim_cursor, count=count,
        )
        self._claim_cursor = text(reply[0])
        if self._claim_cursor == "0-0":
            # A full pass is done; the next one starts after the claim interval.
            self._next_claim = asyncio.get_running_loop().time() + self._claim_interval_s
        entries = [(text(entry_id), fields) for entry_id, fields in reply[1] if fields]
        fresh = [entry for entry in entries if entry[0] not in self._inflight]
        if fresh:
            log.info("reclaimed ingest entries", extra={"fields": {"count": len(fresh)}})
        return fresh

    def _start(self, entry: Entry) -> None:
        entry_id = entry[0]
        if entry_id in self._inflight:
            return
        task = asyncio.create_task(self._handle(entry))
        self._inflight[entry_id] = task
        task.add_done_callback(lambda done: self._reap(entry_id, done))

    def _reap(self, entry_id: str, task: asyncio.Task[None]) -> None:
        self._inflight.pop(entry_id, None)
        if not task.cancelled() and task.exception() is not None:
            log.error("ingest entry handler crashed", exc_info=task.exception())

    async def _handle(self, entry: Entry) -> None:
        entry_id, fields = entry
        ingest = from_fields(streams_pb2.IngestEntry, fields)
        with log_context(requestId=ingest.request_id or None, traceId=ingest.trace_id or None):
            if not ingest.request_id:
                log.error("ingest entry without requestId dropped", extra={"fields": {"entryId": entry_id}})
                await asyncio.shield(self._ack(entry_id))
                return
            if await self._hand_over(ingest, entry_id):
                await asyncio.shield(self._ack(entry_id))

    async def _hand_over(self, ingest: streams_pb2.IngestEntry, entry_id: str) -> bool:
        """Try until a vnvs instance took the request; False when stopping (the entry stays pending)."""
        backoff = Backoff(BACKOFF_START_S, self._backoff_cap_s)
        while True:
            error = ""
            try:
                if not await self._publish_received(ingest.request_id):
                    return True
                call = asyncio.ensure_future(self._orchestrate(ingest))
                if not await self._within_grace(call):
                    return False
                if call.result():
                    return True
            except (grpc.aio.AioRpcError, *REDIS_ERRORS) as exc:
                error = _describe(exc)
            delay = backoff.next()
            if error:
                log.warning("orchestrate failed, will retry", extra={"fields": {"error": error, "delayS": delay}})
            if await sleep_or_stop(self._stop, delay):
                return False
            if not await self._keep_claimed(entry_id):
                return False

    async def _within_grace(self, call: asyncio.Future[bool]) -> bool:
        """Await an Orchestrate call; once stopping, give it the shutdown grace at most, so a hanging
        vnvs cannot hold up the exit for the whole Orchestrate timeout. False: dropped, the entry stays
        pending for a reclaim."""
        answered, _ = await until_stopped(asyncio.shield(call), self._stop)
        if not answered:
            await asyncio.wait({call}, timeout=self._settings.shutdown_grace_ms / 1000)
        if not call.done():
            call.cancel()
            await asyncio.wait({call})
            return False
        return True

    async def _publish_received(self, request_id: str) -> bool:
        """Publish `received` at most once; False when the request no longer exists."""
        due = await self._client.eval(_RECEIVED_GUARD, 1, keys.request_state_key(request_id))
        if int(due) < 0:
            log.warning("ingest entry for a request that no longer exists acknowledged")
            return False
        if int(due) == 1:
            await lifecycle.publish(self._client, lifecycle.new_event(request_id, Status.RECEIVED))
            log.info("request status received published")
        return True

    async def _orchestrate(self, ingest: streams_pb2.IngestEntry) -> bool:
        request = orchestrator_pb2.OrchestrateRequest(request_id=ingest.request_id, trace_id=ingest.trace_id)
        reply = await self._orchestrator.Orchestrate(request, timeout=self._settings.orchestrate_timeout_ms / 1000)
        outcome = orchestrator_pb2.OrchestrateOutcome.Name(reply.outcome)
        if reply.outcome not in TAKEN:
            log.warning("orchestrate answered without taking the request", extra={"fields": {"outcome": outcome}})
            return False
        log.info("request handed to orchestrator", extra={"fields": {"outcome": outcome}})
        return True

    async def _keep_claimed(self, entry_id: str) -> bool:
        """Reset the entry's idle time so no other consumer reclaims it while we retry; False if gone."""
        try:
            owned: Any = await self._client.xclaim(
                keys.INGEST_STREAM, keys.INGEST_GROUP, self._consumer, 0, [entry_id], justid=True
            )
        except REDIS_ERRORS:
            return True  # Redis is down: keep retrying; the entry is still pending
        return bool(owned)

    async def _ack(self, entry_id: str) -> None:
        # A lost ack only means a later reclaim calls Orchestrate again, which vnvs answers with
        # ALREADY_RUNNING or ALREADY_FINISHED; so a few tries are enough, then it is left to that.
        for attempt in range(5):
            try:
                await self._client.xack(keys.INGEST_STREAM, keys.INGEST_GROUP, entry_id)
                self.acked += 1
                INGEST_LAG.observe(max(0.0, time.time() - int(entry_id.split("-", 1)[0]) / 1000))
                return
            except REDIS_ERRORS as exc:
                log.warning("ingest ack failed", extra={"fields": {"error": str(exc), "attempt": attempt + 1}})
                await asyncio.sleep(BACKOFF_START_S * 2**attempt)

    async def _maybe_trim(self) -> None:
        await self._upkeep.maybe_run()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, grpc.aio.AioRpcError):
        return f"{exc.code().name}: {exc.details()}"
    return str(exc)
