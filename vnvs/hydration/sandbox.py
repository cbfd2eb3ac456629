"""Hydration off the event loop, in processes that vnvs kills when a request passes its budget.

A thread is not enough: libxml2 evaluates an XPath such as a nested `count(//…)` without releasing the
GIL or returning to Python, so nothing in the process could stop it. Each job goes to one of
HYDRATION_PROCESSES worker processes (`vnvs.hydration.worker`); the request's documents travel as bytes.
A worker that passes the request's CPU time (HYDRATION_MAX_SECONDS, enforced by the kernel), its memory
(HYDRATION_MAX_MEMORY_BYTES) or a wall-clock backstop is gone, the request fails with HYDRATION_LIMIT,
and a fresh worker takes its place while the other workers keep serving other requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Coroutine, Sequence
from typing import Any

import grpc

from vncommon.errors import HydrationLimit, Unavailable, VnError, rebuild
from vnvs.assembly import Fold
from vnvs.hydration.settings import HydrationSettings
from vnvs.hydration.taskdoc import TaskDocument
from vnvs.hydration.wire import FrameError, Header, encode, folds_to_wire, read_async, settings_to_wire

log = logging.getLogger(__name__)
WORKER_MODULE = "vnvs.hydration.worker"
TIME_SETTING = "HYDRATION_MAX_SECONDS"
MEMORY_SETTING = "HYDRATION_MAX_MEMORY_BYTES"
# The wall-clock backstop of one job, for a worker that waits rather than computes (a fetch that hangs).
WALL_FACTOR = 3
WALL_SLACK_S = 5.0
RESPAWN_DELAY_S = 1.0
SPAWN_TIMEOUT_S = 30.0
_LOST = (asyncio.IncompleteReadError, ConnectionError, FrameError)


class CpuBudget:
    """The CPU seconds one request's hydration may still use, over all its jobs."""

    __slots__ = ("left", "total")

    def __init__(self, seconds: float) -> None:
        self.total = seconds
        self.left = seconds

    def exhausted(self) -> HydrationLimit:
        return HydrationLimit(f"hydration used more than its {self.total:g} s of CPU time ({TIME_SETTING}); "
                              "the process running it was stopped", {"limit": TIME_SETTING})


class _Worker:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.stopping = False

    async def call(self, parts: Sequence[bytes]) -> tuple[Header, list[bytes]]:
        assert self.process.stdin is not None
        self.process.stdin.writelines(parts)
        await self.process.stdin.drain()
        return await self.answer()

    async def answer(self) -> tuple[Header, list[bytes]]:
        assert self.process.stdout is not None
        return await read_async(self.process.stdout)

    async def stop(self) -> int:
        self.stopping = True
        if self.process.returncode is None:
            # os.kill, not Process.kill: that polls first and, for a worker that just died, would reap
            # it under the child watcher, which then reports exit code 255 instead of the signal.
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGKILL)
        if self.process.stdin is not None:
            self.process.stdin.close()
        return await self.process.wait()


class HydrationSandbox:
    """A fixed set of hydration processes; `prepare` and `hydrate_group` each run one job in one of them."""

    def __init__(self, settings: HydrationSettings) -> None:
        self.settings = settings
        self._wire_settings = settings_to_wire(settings)
        # None is the closing sentinel: a job waiting for a worker when the sandbox closes gets it.
        self._idle: asyncio.Queue[_Worker | None] = asyncio.Queue()
        self._busy: set[_Worker] = set()
        self._chores: set[asyncio.Task[None]] = set()
        self._closed = False

    async def start(self) -> None:
        """Start every worker; raises if the worker program cannot run at all."""
        for worker in await asyncio.gather(*(self._spawn() for _ in range(self.settings.processes))):
            self._idle.put_nowait(worker)

    def pids(self, busy_only: bool = False) -> list[int]:
        """Process ids of the workers (or of those running a job now)."""
        busy = [worker.process.pid for worker in self._busy]
        idle: list[_Worker | None] = list(self._idle._queue)  # type: ignore[attr-defined]
        return busy if busy_only else busy + [worker.process.pid for worker in idle if worker is not None]

    async def prepare(self, request_id: str, xml: bytes, budget: CpuBudget) -> bytes:
        """The request after its whole-document pass (variables, hrefs), as a serialised document."""
        return (await self.prepare_counted(request_id, xml, budget))[0]

    async def prepare_counted(self, request_id: str, xml: bytes, budget: CpuBudget) -> tuple[bytes, int]:
        """`prepare`, with the number of groups of the prepared document (InvalidVnml if it has none)."""
        document, groups, _ = await self.prepare_with_first_group(request_id, xml, budget, hydrate_first=False)
        return document, groups

    async def prepare_with_first_group(self, request_id: str, xml: bytes, budget: CpuBudget, hydrate_first: bool
                                       ) -> tuple[bytes, int, list[TaskDocument] | VnError | None]:
        """`prepare_counted`, and with `hydrate_first` in the same job the tasks of group 0, hydrated from the
        prepared document as `hydrate_group` would: one process hop fewer per request. The third item is
        those tasks, or the error of that part (group 0's, for the caller to raise there), or None when it
        did not run (not asked, the worker was recycled, or the budget was spent): then `hydrate_group`
        it as usual."""
        job: Header = {"op": "prepare", "requestId": request_id, "firstGroup": hydrate_first}
        (header, blobs), follow = await self._exchange(job, [xml], budget, follow_up=hydrate_first)
        first = follow if follow is None or isinstance(follow, VnError) else _tasks(*follow)
        return blobs[0], int(header["groups"]), first

    async def hydrate_group(self, request_id: str, document: bytes, group_index: int, budget: CpuBudget
                            ) -> list[TaskDocument]:
        """The task documents of group `group_index` of the working `document`, in task order."""
        return (await self.fold_and_hydrate(request_id, document, group_index, budget, ()))[0]

    async def fold_and_hydrate(self, request_id: str, document: bytes, group_index: int, budget: CpuBudget,
                               folds: Sequence[Fold]) -> tuple[list[TaskDocument], bytes]:
        """Fold earlier groups' results into the working document, then hydrate group `group_index`: its task
        documents in task order and the folded document (for the next group and the response)."""
        raw_folds, results = folds_to_wire(folds)
        header, blobs = await self._job({"op": "group", "requestId": request_id, "groupIndex": group_index,
                                         "folds": raw_folds}, [document, *results], budget)
        if header.get("folded"):
            document, blobs = blobs[0], blobs[1:]
        return _tasks(header, blobs), document

    async def assemble(self, request_id: str, document: bytes, folds: Sequence[Fold], last_results: Sequence[bytes],
                       max_bytes: int | None, budget: CpuBudget) -> bytes:
        """`vnvs.assembly.folded_response` in a hydration process: the tree of a large document lives there."""
        raw_folds, results = folds_to_wire(folds)
        header = {"op": "assemble", "requestId": request_id, "folds": raw_folds, "maxBytes": max_bytes}
        _, blobs = await self._job(header, [document, *results, *last_results], budget)
        return blobs[0]

    async def _job(self, header: Header, blobs: Sequence[bytes], budget: CpuBudget) -> tuple[Header, list[bytes]]:
        return (await self._exchange(header, blobs, budget, follow_up=False))[0]

    async def _exchange(self, header: Header, blobs: Sequence[bytes], budget: CpuBudget, follow_up: bool
                        ) -> tuple[tuple[Header, list[bytes]], tuple[Header, list[bytes]] | VnError | None]:
        """One job on one worker: its reply (a failure raises), and with `follow_up` the reply of the job
        the worker ran after it when it said so (`followUp`), whose failure is returned, not raised."""
        if budget.left <= 0:
            raise budget.exhausted()
        header = {**header, "cpuSeconds": budget.left, "settings": self._wire_settings}
        worker = await self._checkout()
        self._busy.add(worker)
        keep = False
        try:
            reply, out = await self._answer(worker, worker.call(encode(header, blobs)), budget)
            keep = not reply.get("recycle")
            if not reply["ok"]:
                raise _rebuild(reply["error"])
            second: tuple[Header, list[bytes]] | VnError | None = None
            if follow_up and reply.get("followUp"):
                keep = False  # until its answer came in whole
                try:
                    follow, follow_out = await self._answer(worker, worker.answer(), budget)
                except VnError as exc:
                    second = exc
                else:
                    keep = not follow.get("recycle")
                    second = (follow, follow_out) if follow["ok"] else _rebuild(follow["error"])
            return (reply, out), second
        finally:
            self._busy.discard(worker)
            self._release(worker, keep)

    async def _answer(self, worker: _Worker, answer: Awaitable[tuple[Header, list[bytes]]], budget: CpuBudget
                      ) -> tuple[Header, list[bytes]]:
        """One reply within the wall-clock backstop of what the budget has left; its CPU time is spent."""
        wall_s = budget.left * WALL_FACTOR + WALL_SLACK_S
        try:
            reply, out = await asyncio.wait_for(answer, wall_s)
        except TimeoutError:
            raise HydrationLimit(f"hydration took more than {wall_s:g} s of wall-clock time ({TIME_SETTING} x "
                                 f"{WALL_FACTOR} + {WALL_SLACK_S:g} s); the process running it was stopped",
                                 {"limit": TIME_SETTING}) from None
        except _LOST:
            raise await self._lost(worker, budget) from None
        budget.left -= float(reply.get("cpuUsed", 0.0))
        return reply, out

    async def _checkout(self) -> _Worker:
        worker = None if self._closed else await self._idle.get()
        if worker is None:
            self._idle.put_nowait(None)  # for the next one waiting
            raise Unavailable("hydration is stopping with this vnvs")
        return worker

    async def _lost(self, worker: _Worker, budget: CpuBudget) -> VnError:
        ours = worker.stopping  # close() stopped it under a running job
        returncode = await worker.stop()
        if ours:
            return Unavailable("hydration is stopping with this vnvs")
        if returncode == -signal.SIGXCPU:
            return budget.exhausted()
        if returncode == -signal.SIGKILL:  # not ours (we kill only after a timeout): the kernel's OOM killer
            return HydrationLimit(f"the hydration process was killed by the system, most likely for memory "
                                  f"({MEMORY_SETTING})", {"limit": MEMORY_SETTING})
        how = f"signal {signal.Signals(-returncode).name}" if returncode < 0 else f"exit code {returncode}"
        log.error("hydration process died", extra={"fields": {"returncode": returncode}})
        return VnError(f"the hydration process died ({how}); the vnvs log has its output")

    def _release(self, worker: _Worker, keep: bool) -> None:
        """Back to the pool, or (killed, timed out, cancelled mid-job, recycled) replaced by a fresh one."""
        if keep and not self._closed:
            self._idle.put_nowait(worker)
            return
        self._chore(self._replace(worker))

    async def _replace(self, worker: _Worker) -> None:
        await worker.stop()
        while not self._closed:
            try:
                fresh = await self._spawn()
            except OSError as exc:
                log.error("cannot start a hydration process; retrying", extra={"fields": {"error": str(exc)}})
                await asyncio.sleep(RESPAWN_DELAY_S)
                continue
            if self._closed:
                await fresh.stop()
            else:
                self._idle.put_nowait(fresh)
            return

    def _chore(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._chores.add(task)
        task.add_done_callback(self._chores.discard)

    async def _spawn(self) -> _Worker:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", WORKER_MODULE, "--max-memory-bytes", str(self.settings.max_memory_bytes),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            # Its own session: a Ctrl-C meant for vnvs must not kill a worker under a running job.
            start_new_session=True,
        )
        worker = _Worker(process)
        try:
            assert process.stdout is not None
            ready, _ = await asyncio.wait_for(read_async(process.stdout), SPAWN_TIMEOUT_S)
        except (*_LOST, TimeoutError):
            ready = {}
        if not ready.get("ready"):
            code = await worker.stop()
            raise OSError(f"the hydration process did not start (exit code {code}); the vnvs log has its output")
        return worker

    async def close(self) -> None:
        """Stop every worker (idle or busy) and wait for them; safe to call twice."""
        self._closed = True
        # Replacements first: each sees `_closed` and stops what it started, so none is left behind.
        await asyncio.gather(*self._chores, return_exceptions=True)
        workers = [*self._busy]
        while not self._idle.empty():
            idle = self._idle.get_nowait()
            if idle is not None:
                workers.append(idle)
        self._idle.put_nowait(None)
        await asyncio.gather(*(worker.stop() for worker in workers), return_exceptions=True)


def _tasks(header: Header, blobs: Sequence[bytes]) -> list[TaskDocument]:
    return [TaskDocument(str(task_id), str(valuation), str(group), xml)
            for (task_id, valuation, group), xml in zip(header["tasks"], blobs, strict=True)]


def _rebuild(error: Header) -> VnError:
    """The worker's error as the VnError it was (reason, code, message and metadata kept)."""
    code = grpc.StatusCode.__members__.get(str(error.get("code")), grpc.StatusCode.INTERNAL)
    metadata = {str(k): str(v) for k, v in dict(error.get("metadata", {})).items()}
    return rebuild(str(error["reason"]), code, str(error["message"]), metadata)
