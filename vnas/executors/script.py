"""The valuation script executor: one child process per task, never through a shell (SPEC section 9).

The script gets argv `[script, <task-xml-path>]`, the task XML on stdin, a minimal environment with the
VN_* variables (vnas.scriptenv) and its stdout read up to VNAS_MAX_RESULT_BYTES (vnas.limits). It runs in
its own session; when it ends, times out, prints too much or is cancelled, everything it started is
killed (vnas.reaper), including processes that left its session.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from vnas import limits, process, scriptenv
from vnas.executors.result import normalise_result
from vnas.reaper import Reaper
from vnas.settings import DEFAULT_MAX_RESULT_BYTES
from vnas.task import TaskContext, TaskFailed, TaskOutcome, elapsed_ms
from vncommon import errortext

STDERR_TAIL_BYTES = 2048
# After the script ended, how long to wait for the pipes to close before giving up on the rest of the output.
PIPE_DRAIN_S = 2.0
# Pipes still open this long after the exit mean a leftover holds them: sweep for it at once.
PIPE_QUIET_S = 0.05
TEMP_PREFIX = "vnas-task-"


@dataclass(frozen=True, slots=True)
class ScriptRun:
    """What the process did: exit code, output, and whether the timeout killed it."""

    returncode: int
    stdout: bytes
    stderr: bytes
    timed_out: bool = False
    too_large: bool = False


class Ending(enum.Enum):
    """How a run ended; None in its place means the caller cancelled it."""

    EXITED = "exited"
    TIMED_OUT = "timed out"
    TOO_LARGE = "too large"


def script_env(base: Mapping[str, str], ctx: TaskContext) -> dict[str, str]:
    """The script's environment: the minimal base (vnas.scriptenv) plus the task's identity."""
    env = dict(base)
    env.update({
        "VN_REQUEST_ID": ctx.request_id,
        "VN_GROUP_INDEX": str(ctx.group_index),
        "VN_TASK_ID": ctx.task_id,
        "VN_ATTEMPT": str(ctx.attempt),
        "VN_VALUATION_NAME": ctx.valuation_name,
    })
    if ctx.trace_id:
        env["VN_TRACE_ID"] = ctx.trace_id
    return env


def stderr_tail(stderr: bytes) -> str:
    tail = stderr[-STDERR_TAIL_BYTES:].decode("utf-8", errors="replace").strip()
    return tail or "(empty)"


def exit_description(returncode: int) -> str:
    if returncode < 0:
        with contextlib.suppress(ValueError):
            return f"exit code {returncode} (killed by {signal.Signals(-returncode).name})"
    return f"exit code {returncode}"


class ScriptExecutor:
    """Runs VNAS_SCRIPT once per task under VNAS_TASK_TIMEOUT_MS and VNAS_MAX_RESULT_BYTES."""

    def __init__(self, script: str, timeout_s: float, base_env: Mapping[str, str] | None = None, *,
                 allow_env: tuple[str, ...] = (), max_result_bytes: int = DEFAULT_MAX_RESULT_BYTES,
                 adopt_orphans: bool = False) -> None:
        self.script = script
        self._timeout_s = timeout_s
        self._max_result_bytes = max_result_bytes
        # Built once from the worker's environment: a few basics and the VNAS_SCRIPT_ENV names, no secrets.
        self._base_env = scriptenv.base_env(os.environ if base_env is None else base_env, allow_env)
        self._reaper = Reaper(adopt_orphans)

    async def run(self, ctx: TaskContext, task_xml: bytes) -> TaskOutcome:
        started = time.monotonic()
        try:
            run = await self.spawn(ctx, task_xml)
        except OSError as exc:
            return TaskOutcome.failed(f"cannot start script {self.script}: {exc}", elapsed_ms(started))
        try:
            result = self._check(run, task_xml)
        except TaskFailed as exc:
            return TaskOutcome.failed(str(exc), elapsed_ms(started))
        return TaskOutcome(True, result, elapsed_ms(started))

    async def aclose(self) -> None:
        """Nothing outlives a task here."""

    def _check(self, run: ScriptRun, task_xml: bytes) -> bytes:
        exit_code, stderr = exit_description(run.returncode), f"stderr: {stderr_tail(run.stderr)}"
        if run.timed_out:
            raise TaskFailed(errortext.compose(
                f"script ran past VNAS_TASK_TIMEOUT_MS ({int(self._timeout_s * 1000)} ms) and was killed with "
                f"every process it started; {exit_code}", stderr))
        if run.too_large:
            raise TaskFailed(errortext.compose(
                f"{limits.ResultTooLarge(self._max_result_bytes)}; the output was not read further and the script "
                f"was killed with every process it started; {exit_code}", stderr))
        if run.returncode != 0:
            raise TaskFailed(errortext.compose(f"script failed with {exit_code}", stderr))
        try:
            return limits.check_size(normalise_result(task_xml, run.stdout), self._max_result_bytes)
        except TaskFailed as exc:
            summary, detail = errortext.split(str(exc))
            raise TaskFailed(errortext.compose(f"script {summary}; {exit_code}", detail, stderr)) from None
        except limits.ResultTooLarge as exc:
            raise TaskFailed(errortext.compose(f"script {exc}; {exit_code}", stderr)) from None

    async def spawn(self, ctx: TaskContext, task_xml: bytes) -> ScriptRun:
        """Run the script on `task_xml` (temp file + stdin); its temp file is removed afterwards."""
        fd, path = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=".xml")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(task_xml)
            self._reaper.starting()
            child = process.start([self.script, path], script_env(self._base_env, ctx))
            self._reaper.started(child.pid)
            try:
                return await self._communicate(child, task_xml)
            finally:
                process.close_pipes(child)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

    async def _communicate(self, child: subprocess.Popen[bytes], task_xml: bytes) -> ScriptRun:
        stdout = limits.BoundedOutput(self._max_result_bytes)
        stderr = limits.TailBuffer(STDERR_TAIL_BYTES)
        io = asyncio.ensure_future(process.pump(child, task_xml, stdout, stderr))
        ending: Ending | None = None
        try:
            ending = await self._until_exit(child, io)
        finally:
            # However the run ends (exit, timeout, too much output, cancellation), nothing of it keeps running;
            # `ending` is None when the caller gave up (shutdown, gRPC cancel).
            await self._end(child, io, kill=ending is not Ending.EXITED)
        returncode = child.returncode if child.returncode is not None else -signal.SIGKILL
        # Checked on the buffer, not on `ending`: the last bytes may pass the limit after the exit was seen.
        return ScriptRun(returncode, stdout.value(), stderr.value(), timed_out=ending is Ending.TIMED_OUT,
                         too_large=stdout.overflowed)

    async def _until_exit(self, child: subprocess.Popen[bytes], io: asyncio.Future[None]) -> Ending:
        """Wait for the script to exit, for its output to pass the limit, or for the timeout."""
        exited = asyncio.ensure_future(process.wait_exit(child))
        waiting: set[asyncio.Future[Any]] = {exited, io}
        deadline = asyncio.get_running_loop().time() + self._timeout_s
        try:
            while True:
                remaining = deadline - asyncio.get_running_loop().time()
                done, _ = await asyncio.wait(waiting, timeout=max(remaining, 0),
                                             return_when=asyncio.FIRST_COMPLETED)
                if not done:
                    return Ending.TIMED_OUT
                if io in done:
                    waiting.discard(io)
                    if isinstance(io.exception(), limits.ResultTooLarge):
                        return Ending.TOO_LARGE
                if exited in done:
                    return Ending.EXITED
        finally:
            exited.cancel()

    async def _end(self, child: subprocess.Popen[bytes], io: asyncio.Future[None], kill: bool) -> None:
        """Kill what is left of the run, wait for the script, and collect the rest of its output."""
        if kill:
            self._reaper.kill(child.pid)
        if child.returncode is None:  # already waited for when it exited by itself
            await process.wait_exit(child)
        self._reaper.finished(child.pid, sweep_now=kill)
        if not kill:
            # Pipes still open after the exit and the group kill: a leftover that left the session holds them.
            done, _ = await asyncio.wait({io}, timeout=PIPE_QUIET_S)
            if not done:
                self._reaper.sweep()
        try:
            await asyncio.wait_for(asyncio.shield(io), PIPE_DRAIN_S)
        except TimeoutError:
            io.cancel()  # something the reaper may not kill yet (a task beside it runs) still holds the pipes
        except limits.ResultTooLarge:
            pass  # the buffer says so (`overflowed`)

