"""Test doubles for vnapi: a recording orchestrator servicer and a stand-in for vnvs's Redis writes."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field

import grpc
import redis.asyncio as redis

from vn.v1 import orchestrator_pb2, orchestrator_pb2_grpc, valuation_pb2
from vncommon import keys
from vncommon.config import CommonSettings
from vnvs.ledger import RunLedger

VALID_XML = b"""<?xml version="1.0" encoding="UTF-8"?>
<?vnvs $VALUATION_DATE = "2025-06-30" ?>
<vnml>
  <project name="eod">
    <calculator name="bond"/>
    <portfolio>
      <instrument name="UST10"><coupon>0.0425</coupon></instrument>
    </portfolio>
    <group name="price">
      <valuation name="bond" use="vn:link(/vnml/project/portfolio, instrument)">
        <instrument select="."/>
      </valuation>
    </group>
    <group name="risk">
      <valuation name="dv01"><basePrice/></valuation>
    </group>
  </project>
</vnml>
"""

RESPONSE_XML = b'<?xml version="1.0" encoding="UTF-8"?>\n<vnml-response status="succeeded">\xc3\xa9</vnml-response>'


def submit_request(xml: bytes = VALID_XML, **fields: object) -> valuation_pb2.SubmitRequest:
    return valuation_pb2.SubmitRequest(xml=xml, **fields)


@dataclass
class FakeOrchestrator(orchestrator_pb2_grpc.OrchestratorServiceServicer):  # type: ignore[misc]
    """Records Orchestrate calls; can fail the first N, hold calls until released, or pick the outcome."""

    failures: int = 0
    outcome: int = orchestrator_pb2.ORCHESTRATE_OUTCOME_ACCEPTED
    hold: asyncio.Event | None = None
    calls: list[str] = field(default_factory=list)

    async def Orchestrate(
        self, request: orchestrator_pb2.OrchestrateRequest, context: grpc.aio.ServicerContext
    ) -> orchestrator_pb2.OrchestrateResponse:
        self.calls.append(request.request_id)
        if self.failures > 0:
            self.failures -= 1
            await context.abort(grpc.StatusCode.UNAVAILABLE, "orchestrator is busy")
        if self.hold is not None:
            await self.hold.wait()
        return orchestrator_pb2.OrchestrateResponse(request_id=request.request_id, outcome=self.outcome)


class VnvsStandIn:
    """Plays vnvs's part in Redis (SPEC sections 5 and 6) so that vnapi's readers see real state.

    It writes through vnvs's own RunLedger: the start, the group steps and the terminal compare-and-set
    with its single terminal event are the production code paths, so a waiter tested against it waits
    for exactly what a running vnvs writes.
    """

    def __init__(self, client: redis.Redis, stream_shards: int = 1) -> None:
        self.client = client
        self._shards = stream_shards
        self._ledgers: dict[str, RunLedger] = {}
        self._task_counts: dict[str, list[int]] = {}

    async def start(self, request_id: str) -> None:
        self._ledgers[request_id] = RunLedger(self.client, request_id, CommonSettings().request_ttl_seconds,
                                              self._shards)
        self._task_counts[request_id] = []
        await self._ledgers[request_id].begin()

    async def _ledger(self, request_id: str) -> RunLedger:
        """The ledger of a started request. One that was never started is begun as a resumed run begins
        one whose `started` is already out: without a new event, numbering after the recorded ones."""
        if request_id not in self._ledgers:
            await self.client.hset(keys.request_state_key(request_id), "startedPublished", "1")
            await self.start(request_id)
        return self._ledgers[request_id]

    async def run_group(self, request_id: str, group_index: int, tasks: int = 2) -> None:
        ledger = await self._ledger(request_id)
        await ledger.open_group(group_index)
        pipe = ledger.pipeline(atomic=True)
        ledger.queue_group_running(pipe, group_index, tasks, 0, first=True)
        await pipe.execute()
        await ledger.close_group(group_index, tasks)
        self._task_counts[request_id].append(tasks)

    async def succeed(self, request_id: str, body: bytes = RESPONSE_XML) -> None:
        ledger = await self._ledger(request_id)
        assert await ledger.finish("succeeded", body, "", self._task_counts[request_id])

    async def fail(self, request_id: str, detail: dict[str, str]) -> str:
        raw = json.dumps(detail)
        ledger = await self._ledger(request_id)
        assert await ledger.finish("failed", raw.encode(), raw, self._task_counts[request_id])
        return raw

    async def expire(self, request_id: str) -> None:
        """What the TTLs leave behind after REQUEST_TTL_SECONDS: only the tombstone."""
        await self.client.set(keys.tombstone_key(request_id), "1", ex=3600)
        await self.client.delete(*keys.request_keys(request_id, 2))
