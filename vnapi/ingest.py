"""The ingest consumer: hands each stored request to a vnvs instance (SPEC section 2, step 2).

Fetch (the shared `vncommon.consumer` loop): XAUTOCLAIM entries a dead consumer left pending, then
XREADGROUP new ones.
Execute: publish `received` once, then call Orchestrate until a vnvs instance takes responsibility.
Settle: XACK, and only then. An entry whose Orchestrate keeps failing stays pending and is retried,
so a request is never lost; calling Orchestrate twice is harmless (vnvs answers ALREADY_RUNNING).
On stop the service runner's phases apply: fetching ends, running hand-overs get the grace, and the
entries still pending are handed back for another vnapi.
"""

from __future__ import annotations

import asyncio
import logging
import time

import grpc
import redis.asyncio as redis

from vn.v1 import orchestrator_pb2, orchestrator_pb2_grpc, streams_pb2
from vnapi.metrics import INGEST_LAG
from vnapi.settings import VnapiSettings
from vncommon import keys, lifecycle, tracing
from vncommon.backoff import Backoff
from vncommon.consumer import StreamConsumer
from vncommon.consumergroup import StreamEntry
from vncommon.errors import OrchestratorBusy
from vncommon.grpcutil import decode_error
from vncommon.logs import log_context
from vncommon.phase import Phase
from vncommon.redisconn import REDIS_ERRORS
from vncommon.shardedgroup import ShardedGroup
from vncommon.state import REQUEST_HASH, Status
from vncommon.streams import from_fields
from vncommon.streamtrim import ShardUpkeep

log = logging.getLogger(__name__)

BACKOFF_START_S = 0.1
BACKOFF_CAP_S = 5.0
# An orchestrator without room (ORCHESTRATOR_BUSY) is asked again at least this often: room frees as
# its requests end, and a request should not wait long past that.
BUSY_BACKOFF_CAP_S = 1.0
TRIM_INTERVAL_S = 10.0
TAKEN = frozenset({
    orchestrator_pb2.ORCHESTRATE_OUTCOME_ACCEPTED,
    orchestrator_pb2.ORCHESTRATE_OUTCOME_ALREADY_RUNNING,
    orchestrator_pb2.ORCHESTRATE_OUTCOME_ALREADY_FINISHED,
})

# Publishes `received` at most once, in one call: -1: the request is gone; 0: not due (already published,
# or the request moved on); else the event's sequence (it went into the event list, and onto the lifecycle
# stream when that is KEYS[3]: on a cluster, another slot, the caller appends it).
# KEYS: state hash, event list[, lifecycle stream]. ARGV: the event's JSON, the stream's MAXLEN, then the
# stream entry's field/value pairs (its sequence is added here).
_PUBLISH_RECEIVED = f"""
local status = redis.call('HGET', KEYS[1], '{REQUEST_HASH.status}')
if not status then return -1 end
if status ~= '{Status.RECEIVED}' then return 0 end
if redis.call('HSETNX', KEYS[1], '{REQUEST_HASH.received_published}', '1') == 0 then return 0 end
local sequence = redis.call('RPUSH', KEYS[2], ARGV[1])
{lifecycle.lua_announce(2)}
return sequence
"""


class IngestConsumer(StreamConsumer[StreamEntry]):
    """One consumer of `stream:request:ingest` in group `orchestrator-main`."""

    name = "vnapi-ingest"

    def __init__(
        self,
        client: redis.Redis,
        settings: VnapiSettings,
        orchestrator: orchestrator_pb2_grpc.OrchestratorServiceStub,
    ) -> None:
        claim_idle_ms = settings.ingest_claim_idle_ms
        claim_interval_s = max(0.05, min(claim_idle_ms / 2000, 5.0))
        super().__init__(
            ShardedGroup(client, keys.ingest_streams(settings.common.stream_layouts), keys.INGEST_GROUP,
                         settings.consumer_name),
            concurrency=settings.ingest_concurrency, claim_idle_ms=claim_idle_ms, claim_interval_s=claim_interval_s,
            # Blocking no longer than the claim interval keeps the reclaim of idle entries on time.
            block_ms=max(1, min(settings.common.default_block_ms, int(claim_interval_s * 1000))),
            backoff_s=(BACKOFF_START_S, BACKOFF_CAP_S),
        )
        self._client = client
        self._settings = settings
        self._orchestrator = orchestrator
        self._backoff_cap_s = min(BACKOFF_CAP_S, claim_idle_ms / 3000)
        self._upkeep = ShardUpkeep(client, keys.ingest_streams(settings.common.stream_layouts), keys.INGEST_GROUP,
                                   keys.INGEST_MAXLEN, interval_s=TRIM_INTERVAL_S)
        self.acked = 0

    async def prepare(self, entries: list[StreamEntry]) -> list[StreamEntry]:
        return entries

    async def upkeep(self) -> None:
        await self._upkeep.maybe_run()

    async def handle(self, entry: StreamEntry) -> None:
        fields: dict[bytes | str, bytes | str] = {key: value for key, value in entry.fields.items()}
        ingest = from_fields(streams_pb2.IngestEntry, fields)
        with log_context(requestId=ingest.request_id or None, traceId=ingest.trace_id or None), \
                tracing.ingest_span(ingest.traceparent, ingest.trace_id, ingest.request_id):
            if not ingest.request_id:
                log.error("ingest entry without requestId dropped", extra={"fields": {"entryId": entry.entry_id}})
                await self.shielded(self._ack(entry.entry_id))
                return
            if await self._hand_over(ingest, entry.entry_id):
                await self.shielded(self._ack(entry.entry_id))

    async def _hand_over(self, ingest: streams_pb2.IngestEntry, entry_id: str) -> bool:
        """Try until a vnvs instance took the request; False when stopping (the entry stays pending).

        Once stopping, a call already running has the shutdown grace (then `finish` cancels it), so a
        hanging vnvs cannot hold up the exit for the whole Orchestrate timeout; no new try starts.
        """
        backoff = Backoff(BACKOFF_START_S, self._backoff_cap_s)
        while True:
            error, busy = "", False
            try:
                if not await self._publish_received(ingest.request_id):
                    return True
                if await self._orchestrate(ingest):
                    return True
            except (grpc.aio.AioRpcError, *REDIS_ERRORS) as exc:
                busy = isinstance(exc, grpc.aio.AioRpcError) and isinstance(decode_error(exc), OrchestratorBusy)
                error = "" if busy else _describe(exc)
            delay = min(backoff.next(), BUSY_BACKOFF_CAP_S) if busy else backoff.next()
            if busy:
                # Admission at work, not a fault: the entry stays ours (pending) and is offered again.
                log.debug("orchestrator busy; the request waits for room", extra={"fields": {"delayS": delay}})
            if error:
                log.warning("orchestrate failed, will retry", extra={"fields": {"error": error, "delayS": delay}})
            if await self.phase.sleep(delay, until=Phase.STOPPING):
                return False
            if not await self._keep_claimed(entry_id):
                return False

    async def _publish_received(self, request_id: str) -> bool:
        """Publish `received` at most once; False when the request no longer exists."""
        shards = self._settings.common.stream_shards
        event = lifecycle.new_event(request_id, Status.RECEIVED)
        script_keys = lifecycle.scripted_event_keys(self._client, request_id, shards)
        sequence = int(await self._client.eval(_PUBLISH_RECEIVED, len(script_keys), *script_keys,
                                               lifecycle.event_to_json(event), keys.LIFECYCLE_MAXLEN,
                                               *lifecycle.entry_pairs(event)))
        if sequence < 0:
            log.warning("ingest entry for a request that no longer exists acknowledged")
            return False
        if sequence > 0:
            await lifecycle.announce_scripted(self._client, event, sequence, shards)
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
            return await self.group.keep_claimed(entry_id)
        except REDIS_ERRORS:
            return True  # Redis is down: keep retrying; the entry is still pending

    async def _ack(self, entry_id: str) -> None:
        # A lost ack only means a later reclaim calls Orchestrate again, which vnvs answers with
        # ALREADY_RUNNING or ALREADY_FINISHED; so a few tries are enough, then it is left to that.
        for attempt in range(5):
            try:
                await self.group.ack(entry_id)
                self.acked += 1
                INGEST_LAG.observe(max(0.0, time.time() - int(entry_id.split("-", 1)[0]) / 1000))
                return
            except REDIS_ERRORS as exc:
                log.warning("ingest ack failed", extra={"fields": {"error": str(exc), "attempt": attempt + 1}})
                await asyncio.sleep(BACKOFF_START_S * 2**attempt)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, grpc.aio.AioRpcError):
        return f"{exc.code().name}: {exc.details()}"
    return str(exc)
