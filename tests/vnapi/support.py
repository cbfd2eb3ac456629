"""Test doubles for vnapi: a recording orchestrator servicer and a stand-in for vnvs's Redis writes."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field

import grpc
import redis.asyncio as redis

from vn.v1 import orchestrator_pb2, orchestrator_pb2_grpc, valuation_pb2
from vncommon import keys, lifecycle
from vncommon.timeutil import utc_now_iso

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
    """Plays vnvs's part in Redis (SPEC sections 5 and 6) so that vnapi's readers see real state."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    async def start(self, request_id: str) -> None:
        await self.client.hset(keys.request_state_key(request_id),
                               mapping={"status": "started", "startedAt": utc_now_iso(), "currentGroup": 0})
        await lifecycle.publish(self.client, lifecycle.new_event(request_id, "started"))

    async def run_group(self, request_id: str, group_index: int, tasks: int = 2) -> None:
        group_key = keys.group_state_key(request_id, group_index)
        await self.client.hset(keys.request_state_key(request_id), "currentGroup", group_index)
        await self.client.hset(group_key, mapping={"expected": tasks, "completed": 0, "failed": 0,
                                                   "status": "running"})
        await lifecycle.publish(self.client, lifecycle.new_event(request_id, "group_started", group_index))
        await self.client.hset(group_key, mapping={"completed": tasks, "status": "completed"})
        await lifecycle.publish(self.client, lifecycle.new_event(request_id, "group_completed", group_index))

    async def succeed(self, request_id: str, body: bytes = RESPONSE_XML) -> None:
        await self.client.set(keys.request_response_key(request_id), body)
        assert await lifecycle.finish(self.client, request_id, "succeeded")

    async def fail(self, request_id: str, detail: dict[str, str]) -> str:
        raw = json.dumps(detail)
        await self.client.set(keys.request_failure_key(request_id), raw)
        assert await lifecycle.finish(self.client, request_id, "failed", raw)
        return raw

    async def expire(self, request_id: str) -> None:
        """What the TTLs leave behind after REQUEST_TTL_SECONDS: only the tombstone."""
        await self.client.set(keys.tombstone_key(request_id), "1", ex=3600)
        await self.client.delete(*keys.request_keys(request_id, 2))
