"""The requests this vnvs instance drives: lease, run, renew, release; and takeover of orphaned ones."""

from __future__ import annotations

import asyncio
import logging

import redis.asyncio as redis

from vncommon import keys
from vncommon.aio import sleep_or_stop
from vncommon.errors import OrchestratorBusy, RequestOverBudget
from vncommon.redisconn import REDIS_ERRORS
from vncommon.state import REQUEST_HASH, is_terminal
from vncommon.streamtrim import ShardUpkeep
from vnvs import metrics
from vnvs.admission import Admission
from vnvs.hydration.sandbox import HydrationSandbox
from vnvs.lease import Lease, orphaned_requests
from vnvs.ledger import RunLedger
from vnvs.sequencer import RequestRun
from vnvs.settings import VnvsSettings

log = logging.getLogger(__name__)

# How long a cancelled run gets to stop before it is cancelled again (see `_stop`).
RECANCEL_S = 0.2


async def _stop(work: asyncio.Task[None]) -> None:
    """Cancel a run and wait until it stopped. A cancellation can be lost on Python 3.11: redis-py sends
    every command through asyncio.wait_for (its socket timeout), which swallows a cancellation that lands
    as the send completes (CPython gh-86296), and the run would go on. So it is cancelled until it ends."""
    while not work.done():
        work.cancel()
        await asyncio.wait({work}, timeout=RECANCEL_S)


class RunnerPool:
    """Starts a RequestRun per request under a lease, keeps the lease fresh, and reaps finished runs."""

    def __init__(self, client: redis.Redis, settings: VnvsSettings, sandbox: HydrationSandbox) -> None:
        self._client = client
        self._settings = settings
        self._sandbox = sandbox
        self._runs: dict[str, asyncio.Task[None]] = {}
        self._stopping = asyncio.Event()
        self._works: dict[str, asyncio.Task[None]] = {}
        self._upkeep = ShardUpkeep(client, keys.all_dispatch_streams(settings.common.stream_layouts),
                                   keys.DISPATCH_GROUP, keys.DISPATCH_MAXLEN)
        self.admission = Admission(settings.max_inflight_bytes)
        metrics.INFLIGHT_BYTES.set_function(lambda: self.admission.in_flight)
        metrics.INFLIGHT_BYTES_PEAK.set_function(lambda: self.admission.peak)
        metrics.INFLIGHT_BYTES_BUDGET.set(self.admission.budget)

    @property
    def running(self) -> int:
        return len(self._runs)

    def has_capacity(self) -> bool:
        return not self._stopping.is_set() and len(self._runs) < self._settings.max_concurrent_requests

    def is_running(self, request_id: str) -> bool:
        return request_id in self._runs

    async def try_start(self, request_id: str, trace_id: str, size: int = 0) -> bool:
        """Take the lease and start the run; False when another live instance holds the request.

        `size` (the stored XML's bytes) is admitted against VNVS_MAX_INFLIGHT_BYTES before anything is
        awaited, so concurrent calls cannot both take the last room: OrchestratorBusy when it does not fit
        now. A request larger than the whole budget is taken only to be failed with RequestOverBudget.
        """
        if request_id in self._runs:
            return True
        refusal = self._refusal(size)
        if refusal is None and not self.admission.fits(size):
            metrics.ADMISSION_DEFERRED.inc()
            raise OrchestratorBusy(
                f"this orchestrator drives {self.admission.in_flight} payload bytes; {size} more do not fit "
                f"its VNVS_MAX_INFLIGHT_BYTES={self.admission.budget} now (the request waits for room)",
                {"inFlightBytes": str(self.admission.in_flight), "sizeBytes": str(size)})
        self.admission.hold(request_id, 0 if refusal else size)
        try:
            lease = Lease(self._client, request_id, self._settings.instance_id, self._settings.lease_ms)
            if not await lease.acquire():
                await lease.ensure_advertised()
                self.admission.release(request_id)
                return False
        except BaseException:
            self.admission.release(request_id)
            raise
        run = RequestRun(self._client, self._settings, self._sandbox, request_id, trace_id)
        run.refusal = refusal
        task = asyncio.create_task(self._drive(run, lease), name=f"request-{request_id}")
        self._runs[request_id] = task
        metrics.REQUESTS_RUNNING.inc()
        task.add_done_callback(lambda done: self._forget(request_id, done))
        return True

    def _refusal(self, size: int) -> RequestOverBudget | None:
        if not self.admission.too_large(size):
            return None
        return RequestOverBudget(
            f"the request has {size} bytes, more than this orchestrator's whole VNVS_MAX_INFLIGHT_BYTES="
            f"{self.admission.budget}, so it could never be admitted; raise VNVS_MAX_INFLIGHT_BYTES (or the "
            f"memory of the vnvs containers) on every vnvs instance, or send smaller requests",
            {"sizeBytes": str(size), "maxInflightBytes": str(self.admission.budget)})

    def _forget(self, request_id: str, task: asyncio.Task[None]) -> None:
        self._runs.pop(request_id, None)
        self.admission.release(request_id)
        metrics.REQUESTS_RUNNING.dec()
        error = None if task.cancelled() else task.exception()
        if error is not None:  # e.g. Redis went away mid-run: the lease lapses and the request resumes
            log.error("request run stopped by an error; it resumes once its lease lapses",
                      exc_info=error, extra={"fields": {"requestId": request_id}})

    async def _drive(self, run: RequestRun, lease: Lease) -> None:
        """Run the request while renewing its lease; stop driving it if the lease is lost."""
        work = asyncio.create_task(run.run())
        self._works[run.request_id] = work
        try:
            while not work.done():
                await asyncio.wait({work}, timeout=lease.ttl_ms / 3000)
                if not work.done() and not await self._renew(lease):
                    log.warning("lease lost; another instance takes over", extra={"fields": {
                        "requestId": run.request_id}})
                    break
        except REDIS_ERRORS:
            log.warning("redis unavailable while running; the lease will lapse and the request resumes",
                        extra={"fields": {"requestId": run.request_id}})
        finally:
            self._works.pop(run.request_id, None)
            await _stop(work)
            if work.cancelled() and self._stopping.is_set():
                await self._hand_over(lease)
        error = None if work.cancelled() else work.exception()
        if error is not None:
            raise error

    async def _hand_over(self, lease: Lease) -> None:
        """On shutdown, give the request up at once so another instance resumes it without waiting.

        A run handed over was not lost, so it does not count against VNVS_MAX_RUN_STARTS.
        """
        try:
            await self._client.hincrby(keys.request_state_key(lease.request_id), REQUEST_HASH.run_starts, -1)
            await lease.hand_over()
            log.info("handed the request over", extra={"fields": {"requestId": lease.request_id}})
        except REDIS_ERRORS:
            pass  # the lease lapses by itself

    async def _renew(self, lease: Lease) -> bool:
        try:
            return await lease.renew()
        except REDIS_ERRORS:
            return True  # keep working through a short outage; the run itself will notice a long one

    async def recover_orphans(self) -> None:
        """Take over requests whose orchestrator stopped renewing its lease (it died); trim dispatch.
        Returns once `stop_taking()` was called."""
        interval = self._settings.recovery_interval_ms / 1000
        while not self._stopping.is_set():
            try:
                for request_id in await orphaned_requests(self._client):
                    if not self.has_capacity():
                        break
                    await self._adopt(request_id)
                await self._upkeep.maybe_run()
            except REDIS_ERRORS as exc:
                log.warning("orphan scan failed", extra={"fields": {"error": str(exc)}})
            await sleep_or_stop(self._stopping, interval)

    async def _adopt(self, request_id: str) -> None:
        async with self._client.pipeline(transaction=False) as pipe:
            pipe.hmget(keys.request_state_key(request_id), [REQUEST_HASH.status, REQUEST_HASH.trace_id])
            pipe.strlen(keys.request_xml_key(request_id))
            (status, trace_id), size = await pipe.execute()
        if status is None or is_terminal(status):
            await self._client.zrem(keys.ACTIVE_REQUESTS, request_id)
            if status is not None:  # e.g. cancelled while its orchestrator was dead: nobody retired it
                await RunLedger(self._client, request_id, self._settings.common.request_ttl_seconds).retire()
            return
        if not self.admission.too_large(size) and not self.admission.fits(size):
            return  # no room now: a later scan, or another instance, takes it over
        if await self.try_start(request_id, trace_id.decode() if isinstance(trace_id, bytes) else "", size):
            metrics.REQUESTS_ADOPTED.inc()
            log.info("took over orphaned request", extra={"fields": {"requestId": request_id}})

    def stop_taking(self) -> None:
        """Take no new request, adopt no orphan (safe to call twice)."""
        self._stopping.set()

    async def finish(self, grace_seconds: float) -> None:
        """Let the runs in progress finish within the grace."""
        if self._runs:
            await asyncio.wait(list(self._runs.values()), timeout=grace_seconds)

    async def hand_back(self) -> None:
        """Stop the runs still going; each hands its lease over so another instance resumes at once."""
        self._stopping.set()
        # Stop the runs, not their drives: each drive then hands its lease over (see _drive).
        await asyncio.gather(*(_stop(work) for work in list(self._works.values())))
        await asyncio.gather(*self._runs.values(), return_exceptions=True)
