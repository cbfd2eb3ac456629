"""Warm executors: tasks run in long-lived framed-v1 processes, one task per process at a time.

`VNAS_SCRIPT_MODE=persistent` keeps VNAS_SCRIPT processes; `VNAS_EXECUTOR_PROCESSES=N` keeps N
`python -m vnas.poolhost` processes running the VNAS_EXECUTOR function. Both are a `WarmExecutor`: a
fixed number of slots, each holding at most one process, started when a task first needs it. A process
that times out, crashes, exits or speaks garbage is killed with everything it started and its attempt
fails; the next task gets a fresh process. After VNAS_WARM_MAX_TASKS tasks, or once its resident memory
passes VNAS_WARM_MAX_RSS_MB, a process is retired between tasks. Results are normalised like every
other executor's (vnas.executors.result), so the contract and the retries of SPEC section 9 hold.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from vnas import limits, metrics
from vnas.executors.result import normalise_result
from vnas.executors.script import script_env
from vnas.executors.warmproc import ProcessFailed, WarmProcess
from vnas.reaper import Reaper
from vnas.settings import DEFAULT_WARM_MAX_TASKS
from vnas.task import TaskContext, TaskFailed, TaskOutcome, elapsed_ms
from vncommon import errortext, taskframes

log = logging.getLogger(__name__)

# Start-up (until the hello frame) may take VNAS_TASK_TIMEOUT_MS, but at least this: an interpreter importing
# a pricer library on a busy machine takes seconds, and a short task timeout should not fail it.
MIN_STARTUP_S = 10.0


@dataclass(frozen=True, slots=True)
class WarmOptions:
    slots: int
    timeout_s: float
    max_result_bytes: int
    max_tasks: int = DEFAULT_WARM_MAX_TASKS  # VNAS_WARM_MAX_TASKS
    max_rss_mb: int = 0  # VNAS_WARM_MAX_RSS_MB; 0: not checked
    # Whether a handler's error is reported with its traceback or stderr (scripts) or alone (as in-process).
    stderr_with_exceptions: bool = True


class WarmExecutor:
    """Runs each task in an idle warm process of `argv`, starting one when no idle process is left."""

    def __init__(self, argv: Sequence[str], env: Mapping[str, str], label: str, options: WarmOptions,
                 reaper: Reaper | None = None) -> None:
        self.label = label
        self._argv = list(argv)
        self._env = {**env, taskframes.PROTOCOL_ENV: taskframes.PROTOCOL}
        self._options = options
        self._reaper = reaper or Reaper()
        self._slots = asyncio.Semaphore(options.slots)
        self._idle: list[WarmProcess] = []
        self._retiring: set[asyncio.Task[None]] = set()
        self.started_processes = 0

    async def run(self, ctx: TaskContext, task_xml: bytes) -> TaskOutcome:
        async with self._slots:
            started = time.monotonic()
            warm = self._idle.pop() if self._idle else None
            keep = False
            try:
                if warm is None:
                    try:
                        warm = self._start()
                    except OSError as exc:
                        return TaskOutcome.failed(f"cannot start {self.label}: {exc}", elapsed_ms(started))
                outcome = await self._run_on(warm, ctx, task_xml)
                keep = self._reusable(warm)
                return TaskOutcome(outcome.completed, outcome.result_xml, elapsed_ms(started), outcome.error)
            finally:
                if warm is not None:
                    if keep:
                        self._idle.append(warm)  # last in, first out: the warmest process serves next
                    else:
                        self._retire(warm)

    def _start(self) -> WarmProcess:
        warm = WarmProcess(self._argv, self._env, self._reaper, self._options.max_result_bytes)
        warm.start()
        self.started_processes += 1
        metrics.WARM_PROCESSES_STARTED.inc()
        return warm

    async def _run_on(self, warm: WarmProcess, ctx: TaskContext, task_xml: bytes) -> TaskOutcome:
        timeout_ms = int(self._options.timeout_s * 1000)
        try:
            # Starting up gets a budget of its own: the task's timeout is for the task.
            async with asyncio.timeout(max(self._options.timeout_s, MIN_STARTUP_S)):
                await warm.greet()
        except TimeoutError:
            # Most likely a one-shot script, waiting for the end of stdin.
            return TaskOutcome.failed(errortext.compose(
                f"{self.label} did not send its {taskframes.PROTOCOL} hello frame within "
                f"{max(timeout_ms, int(MIN_STARTUP_S * 1000))} ms of starting; is it a persistent script? "
                f"It was killed", self._stderr(warm)))
        except ProcessFailed as exc:
            return self._process_failed(warm, exc)
        try:
            async with asyncio.timeout(self._options.timeout_s):  # no task per call, unlike wait_for
                reply = await warm.exchange(task_xml, script_env({}, ctx))
        except TimeoutError:
            return TaskOutcome.failed(errortext.compose(
                f"{self.label} ran past VNAS_TASK_TIMEOUT_MS ({timeout_ms} ms); its process was killed with every "
                f"process it started and is replaced", self._stderr(warm)))
        except taskframes.BodyTooLarge as exc:
            return TaskOutcome.failed(errortext.compose(
                f"{self.label}: {limits.ResultTooLarge(self._options.max_result_bytes, exc.size)}; the process "
                f"was killed and is replaced", self._stderr(warm)))
        except ProcessFailed as exc:
            return self._process_failed(warm, exc)
        try:
            return TaskOutcome(True, self._result(reply, task_xml, warm))
        except TaskFailed as exc:
            return TaskOutcome.failed(str(exc))

    def _process_failed(self, warm: WarmProcess, exc: ProcessFailed) -> TaskOutcome:
        return TaskOutcome.failed(errortext.compose(
            f"{self.label}: {exc}; the process is replaced (pid {warm.pid})", self._stderr(warm)))

    @staticmethod
    def _stderr(warm: WarmProcess) -> str:
        return f"stderr: {warm.stderr_tail()}"

    def _result(self, reply: taskframes.Frame, task_xml: bytes, warm: WarmProcess) -> bytes:
        stderr = self._stderr(warm)
        if reply.kind == taskframes.ERROR:
            error = str(reply.header.get("error") or "(no error text)")
            exception = reply.header.get("exception")
            verbose = self._options.stderr_with_exceptions
            if exception:
                trace = str(reply.header.get("traceback") or "").strip()
                raise TaskFailed(errortext.compose(f"{self.label} raised {exception}", error,
                                                   f"traceback: {trace}" if verbose and trace else ""))
            raise TaskFailed(errortext.compose(f"{self.label}: {error}", stderr if verbose else ""))
        cpu_ms = reply.header.get("cpuMs")
        if isinstance(cpu_ms, (int, float)) and cpu_ms >= 0:
            metrics.PRICER_CPU.inc(cpu_ms / 1000)
        try:
            result = normalise_result(task_xml, limits.check_size(reply.body, self._options.max_result_bytes))
            return limits.check_size(result, self._options.max_result_bytes)
        except TaskFailed as exc:
            summary, detail = errortext.split(str(exc))
            raise TaskFailed(errortext.compose(f"{self.label} {summary}", detail, stderr)) from None
        except limits.ResultTooLarge as exc:
            raise TaskFailed(errortext.compose(f"{self.label}: {exc}", stderr)) from None

    def _reusable(self, warm: WarmProcess) -> bool:
        if not warm.healthy or warm.tasks_done >= self._options.max_tasks:
            return False
        if self._options.max_rss_mb and (rss := warm.rss_mb()) > self._options.max_rss_mb:
            log.info("retiring a warm process past VNAS_WARM_MAX_RSS_MB", extra={"fields": {
                "pid": warm.pid, "rssMb": round(rss, 1), "limitMb": self._options.max_rss_mb,
                "tasks": warm.tasks_done}})
            return False
        return True

    def _retire(self, warm: WarmProcess) -> None:
        """Kill now (even while the caller is cancelled); wait for the exit in the background."""
        warm.kill()
        closing = asyncio.ensure_future(warm.close())
        self._retiring.add(closing)
        closing.add_done_callback(self._retiring.discard)

    async def aclose(self) -> None:
        """Stop every idle process and wait for the retiring ones (worker shutdown)."""
        while self._idle:
            self._retire(self._idle.pop())
        if self._retiring:
            await asyncio.gather(*self._retiring, return_exceptions=True)
