"""The ValuationService servicer: Submit (async and sync), GetStatus, GetResults, Watch and Cancel."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

import grpc
import redis.asyncio as redis

from vn.v1 import streams_pb2, valuation_pb2, valuation_pb2_grpc
from vnapi.controls import check_deadline_ms, check_priority
from vnapi.intake import Accepted, Intake, Submission, body_sha256
from vnapi.lifecycle_home import LifecycleHome
from vnapi.lifecycle_hub import RESYNC, LifecycleHub, Subscription
from vnapi.metrics import SUBMISSIONS, SYNC_LATENCY
from vnapi.queries import Queries, check_request_id
from vnapi.settings import VnapiSettings
from vnapi.submitwire import SubmitCall
from vnapi.validation import DEFAULT_CONTENT_TYPE, check_submission
from vncommon import keys, trace, tracing
from vncommon.cancel import CANCELLED_BY_CALLER, cancel_request
from vncommon.errors import RequestFinished, VnError
from vncommon.grpcutil import stream_errors, unary_errors
from vncommon.lifecycle import event_from_json
from vncommon.logs import log_context
from vncommon.state import REQUEST_HASH, Status, is_terminal, status_to_proto
from vncommon.timeutil import utc_now_iso, utc_now_ms

log = logging.getLogger(__name__)
INLINE_CHECK_BYTES = 256 * 1024

# A sync wait answers this much before the caller's deadline, so the caller gets timed_out, not an error.
DEADLINE_MARGIN_S = 0.25
# Watchers look at the event list this often even without news, in case the reader missed something.
WATCH_RECHECK_S = 30.0

Event = streams_pb2.LifecycleEvent


class ValuationService(valuation_pb2_grpc.ValuationServiceServicer):
    """vn.v1.ValuationService; errors are raised as VnError and translated by the decorators."""

    def __init__(self, client: redis.Redis, settings: VnapiSettings, hub: LifecycleHub, home: LifecycleHome
                 ) -> None:
        self._client = client
        self._settings = settings
        self._hub = hub
        # Every id made here is on the home lifecycle shard, which the hub always reads.
        self._intake = Intake(client, settings.common.request_ttl_seconds, settings.common.stream_shards,
                              home.new_request_id)
        self._queries = Queries(client)
        # Checking and hashing large bodies: off the event loop, at most this many at once (libxml2 parses
        # and hashlib hashes without the GIL, so threads run them in parallel); the others queue holding
        # only their body, and a check holds about one chunk's tree (vncommon.vnmlscan).
        self._checks = ThreadPoolExecutor(settings.check_threads, thread_name_prefix="vnapi-check")

    def close(self) -> None:
        self._checks.shutdown(wait=False, cancel_futures=True)

    @unary_errors
    async def Submit(
        self, request: valuation_pb2.SubmitRequest | SubmitCall, context: grpc.aio.ServicerContext
    ) -> valuation_pb2.SubmitResponse:
        # The server hands a SubmitCall (the body read once, vnapi.submitwire); a plain request also works.
        call = request if isinstance(request, SubmitCall) else SubmitCall.of(request, bytes(request.xml))
        request = call.request
        mode = "sync" if request.sync else "async"
        started = time.perf_counter()
        try:
            response = await self._submit(call, context)
        except VnError as exc:
            SUBMISSIONS.labels(mode, exc.reason).inc()
            raise
        outcome = "timed_out" if response.timed_out else valuation_pb2.RequestStatus.Name(response.status)
        SUBMISSIONS.labels(mode, outcome.removeprefix("REQUEST_STATUS_").lower()).inc()
        if request.sync:
            SYNC_LATENCY.observe(time.perf_counter() - started)
        return response

    async def _submit(self, call: SubmitCall, context: grpc.aio.ServicerContext) -> valuation_pb2.SubmitResponse:
        request = call.request
        submission = await self._check(request, call)
        with tracing.submit_span(context, submission.trace_id, request.sync):
            return await self._submit_checked(submission, request, context)

    async def _submit_checked(self, submission: Submission, request: valuation_pb2.SubmitRequest,
                              context: grpc.aio.ServicerContext) -> valuation_pb2.SubmitResponse:
        if not request.sync:
            accepted = await self._intake.submit(submission)
            return await self._async_answer(accepted)
        deadline = asyncio.get_running_loop().time() + self._wait_budget(context)
        request_id = self._intake.new_request_id()
        # Subscribe before storing: the request may finish before the store call even returns.
        with self._hub.subscribe(request_id) as own:
            accepted = await self._intake.submit(submission, request_id)
            if not accepted.deduplicated:
                return await self._await_outcome(accepted, own, deadline, fresh=True)
        with self._hub.subscribe(accepted.request_id) as earlier:
            return await self._await_outcome(accepted, earlier, deadline)

    @unary_errors
    async def GetStatus(
        self, request: valuation_pb2.GetStatusRequest, context: grpc.aio.ServicerContext
    ) -> valuation_pb2.GetStatusResponse:
        return await self._queries.status(request.request_id)

    @unary_errors
    async def GetResults(
        self, request: valuation_pb2.GetResultsRequest, context: grpc.aio.ServicerContext
    ) -> valuation_pb2.GetResultsResponse:
        body = await self._queries.results(request.request_id)
        return valuation_pb2.GetResultsResponse(request_id=request.request_id, response_xml=body)

    @stream_errors
    async def Watch(
        self, request: valuation_pb2.WatchRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[valuation_pb2.WatchResponse]:
        request_id = request.request_id
        check_request_id(request_id)
        with self._hub.subscribe(request_id) as subscription:
            await self._queries.state(request_id)  # NOT_FOUND or REQUEST_EXPIRED before any event
            last, replay = 0, True
            while True:
                events = await self._events_after(request_id, last, subscription, replay)
                replay = False
                for event in events:
                    yield valuation_pb2.WatchResponse(event=event)
                    last = event.sequence
                    if is_terminal(event.status):
                        return

    @unary_errors
    async def Cancel(
        self, request: valuation_pb2.CancelRequest, context: grpc.aio.ServicerContext
    ) -> valuation_pb2.CancelResponse:
        request_id = request.request_id
        check_request_id(request_id, strict=True)
        common = self._settings.common
        outcome = await cancel_request(self._client, request_id, CANCELLED_BY_CALLER, "cancelled by a caller",
                                       common.request_ttl_seconds, common.stream_shards)
        if not outcome.previous:
            await self._queries.raise_missing(request_id)
        if not outcome.cancelled and outcome.previous != Status.CANCELLED:
            raise RequestFinished(f"request {request_id} already {outcome.previous}; it cannot be cancelled",
                                  {"requestId": request_id, "status": outcome.previous})
        with log_context(requestId=request_id):
            log.info("request cancelled" if outcome.cancelled else "request was already cancelled",
                     extra={"fields": {"previousStatus": outcome.previous}})
        return valuation_pb2.CancelResponse(request_id=request_id, previous_status=status_to_proto(outcome.previous),
                                            status=valuation_pb2.REQUEST_STATUS_CANCELLED)

    async def _check(self, request: valuation_pb2.SubmitRequest, call: SubmitCall) -> Submission:
        received_at = utc_now_iso()
        received_ms = utc_now_ms()
        priority = check_priority(request.priority)
        deadline_ms = check_deadline_ms(request.deadline_ms, self._settings.common.request_ttl_seconds)
        # The trace_id field first (the gateway always fills it), then a kept X-Trace-Id header.
        trace_id = trace.resolve_trace_id(request.trace_id, trace.from_metadata(request.metadata))
        rules = (request.content_type, request.idempotency_key, self._settings.common.payload_max_bytes)
        # A large body is taken out of its message, checked and hashed in the check pool, so the event loop
        # keeps serving other calls (and the lifecycle reader) meanwhile; a small one is cheaper inline.
        if call.size > INLINE_CHECK_BYTES:
            loop = asyncio.get_running_loop()
            xml, group_count, sha256 = await loop.run_in_executor(self._checks, _take_check_and_hash, call, *rules)
        else:
            xml = call.take_body()
            group_count, sha256 = check_submission(xml, *rules), ""
        return Submission(
            xml=xml,
            group_count=group_count,
            sha256=sha256,
            content_type=request.content_type or DEFAULT_CONTENT_TYPE,
            idempotency_key=request.idempotency_key,
            metadata=dict(request.metadata),
            trace_id=trace_id,
            received_at=received_at,
            priority=priority,
            deadline_at_ms=received_ms + deadline_ms if deadline_ms else 0,
        )

    def _wait_budget(self, context: grpc.aio.ServicerContext) -> float:
        """SYNC_WAIT_TIMEOUT_MS, capped by what is left of the caller's deadline."""
        budget = self._settings.sync_wait_timeout_ms / 1000
        remaining = context.time_remaining()
        if remaining is not None:
            budget = min(budget, remaining - min(DEADLINE_MARGIN_S, remaining * 0.1))
        return max(budget, 0.0)

    async def _async_answer(self, accepted: Accepted) -> valuation_pb2.SubmitResponse:
        status = valuation_pb2.REQUEST_STATUS_RECEIVED
        if accepted.deduplicated:
            current = await self._client.hget(keys.request_state_key(accepted.request_id), REQUEST_HASH.status)
            status = status_to_proto(current) if current is not None else status
        return valuation_pb2.SubmitResponse(
            request_id=accepted.request_id, status=status, deduplicated=accepted.deduplicated
        )

    async def _await_outcome(
        self, accepted: Accepted, subscription: Subscription, deadline: float, fresh: bool = False
    ) -> valuation_pb2.SubmitResponse:
        """Wait for the terminal event. The state is read first (unless the request is `fresh`: stored by
        this call after it subscribed, so no event can have been missed) and again after each wake-up that
        is not a terminal event, so nothing is missed; a terminal event is final and answers by itself."""
        loop = asyncio.get_running_loop()
        with log_context(requestId=accepted.request_id, traceId=accepted.trace_id):
            check = not fresh
            while True:
                remaining = deadline - loop.time()
                if check:
                    state = await self._queries.state(accepted.request_id)
                    remaining = deadline - loop.time()
                    if is_terminal(state.get(REQUEST_HASH.status)) or remaining <= 0:
                        return await self._sync_answer(accepted, state)
                ended = await _next_signal(subscription, remaining)
                if ended is not None:  # the terminal status, which nothing changes any more
                    return await self._sync_answer(accepted, {REQUEST_HASH.status: ended.status})
                check = True

    async def _sync_answer(self, accepted: Accepted, state: dict[str, str]) -> valuation_pb2.SubmitResponse:
        name = state.get(REQUEST_HASH.status, "")
        response = valuation_pb2.SubmitResponse(
            request_id=accepted.request_id, status=status_to_proto(name), deduplicated=accepted.deduplicated
        )
        if name == Status.SUCCEEDED:
            response.response_xml = await self._queries.results_for(accepted.request_id, state)
        elif name in (Status.FAILED, Status.CANCELLED):
            response.failure_detail = await self._queries.failure_detail(accepted.request_id)
        else:
            response.timed_out = True
        log.info("sync submission answered", extra={"fields": {"status": name, "timedOut": response.timed_out}})
        return response

    async def _events_after(
        self, request_id: str, last: int, subscription: Subscription, replay: bool
    ) -> list[Event]:
        """The events with sequence > last: the next live one, or the list when something may be missing."""
        if not replay:
            try:
                item = await subscription.get(WATCH_RECHECK_S)
            except TimeoutError:
                item = RESYNC
            if item is not RESYNC:
                if item.sequence <= last:
                    return []  # already replayed from the list
                if item.sequence == last + 1:
                    return [item]
        # First call, a resync, or a gap (two publishers raced between RPUSH and XADD): the list is
        # complete up to the newest sequence seen, so it fills the gap in order.
        return await self._replay(request_id, last)

    async def _replay(self, request_id: str, last: int) -> list[Event]:
        """The request's recorded events after `last`, from its event list (sequence = position)."""
        raw = await self._client.lrange(keys.request_events_key(request_id), last, -1)
        if not raw and not await self._client.exists(keys.request_state_key(request_id)):
            await self._queries.raise_missing(request_id)
        return [event_from_json(request_id, last + offset, item) for offset, item in enumerate(raw, start=1)]


def _take_check_and_hash(call: SubmitCall, content_type: str, idempotency_key: str, max_bytes: int
                         ) -> tuple[bytes, int, str]:
    xml = call.take_body()
    return xml, check_submission(xml, content_type, idempotency_key, max_bytes), body_sha256(xml)


async def _next_signal(subscription: Subscription, within: float) -> Event | None:
    """Return at the first terminal event (returned), resync marker or timeout (None); other events only
    keep waiting."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while (remaining := deadline - loop.time()) > 0:
        try:
            item = await subscription.get(remaining)
        except TimeoutError:
            return None
        if item is RESYNC:
            return None
        if is_terminal(item.status):
            return item
    return None
