"""OrchestratorService: take responsibility for a request and start running it."""

from __future__ import annotations

import grpc
import redis.asyncio as redis

from vn.v1 import orchestrator_pb2, orchestrator_pb2_grpc
from vncommon import keys, tracing
from vncommon.errors import RequestNotFound, Unavailable
from vncommon.grpcutil import unary_errors
from vncommon.state import REQUEST_HASH, is_terminal
from vncommon.trace import validate_trace_id
from vnvs.runner import RunnerPool

Outcome = orchestrator_pb2.OrchestrateOutcome


class OrchestratorService(orchestrator_pb2_grpc.OrchestratorServiceServicer):
    def __init__(self, client: redis.Redis, runners: RunnerPool) -> None:
        self._client = client
        self._runners = runners

    @unary_errors
    async def Orchestrate(
        self, request: orchestrator_pb2.OrchestrateRequest, context: grpc.aio.ServicerContext
    ) -> orchestrator_pb2.OrchestrateResponse:
        request_id = request.request_id
        validate_trace_id(request.trace_id)
        async with self._client.pipeline(transaction=False) as pipe:
            pipe.hget(keys.request_state_key(request_id), REQUEST_HASH.status)
            pipe.strlen(keys.request_xml_key(request_id))  # what admission counts, O(1)
            status, size = await pipe.execute()
        if status is None:
            raise RequestNotFound(f"request {request_id!r} is not stored")
        if is_terminal(status):
            return self._answer(request_id, Outcome.ORCHESTRATE_OUTCOME_ALREADY_FINISHED)
        if self._runners.is_running(request_id):
            return self._answer(request_id, Outcome.ORCHESTRATE_OUTCOME_ACCEPTED)
        if not self._runners.has_capacity():
            raise Unavailable(f"this orchestrator runs {self._runners.running} requests, its maximum")
        with tracing.orchestrate_parent(context):  # the run's task copies this context: its parent span
            started = await self._runners.try_start(request_id, request.trace_id, int(size))
        if started:
            return self._answer(request_id, Outcome.ORCHESTRATE_OUTCOME_ACCEPTED)
        return self._answer(request_id, Outcome.ORCHESTRATE_OUTCOME_ALREADY_RUNNING)

    @staticmethod
    def _answer(request_id: str, outcome: orchestrator_pb2.OrchestrateOutcome) -> orchestrator_pb2.OrchestrateResponse:
        return orchestrator_pb2.OrchestrateResponse(request_id=request_id, outcome=outcome)
