"""The valuation script executor: one child process per task, never through a shell (SPEC section 9).

The script gets argv `[script, <task-xml-path>]`, the task XML on stdin and VN_* variables. It runs in
its own session, so on timeout (or cancellation) the whole process group is killed, including children
the script started.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass

from vnas import process
from vnas.executors.result import normalise_result
from vnas.task import TaskContext, TaskFailed, TaskOutcome, elapsed_ms

STDERR_TAIL_BYTES = 2048
# After a kill, how long to wait for the pipes to close before giving up on the rest of the output.
PIPE_DRAIN_S = 2.0
TEMP_PREFIX = "vnas-task-"


@dataclass(frozen=True, slots=True)
class ScriptRun:
    """What the process did: exit code, output, and whether the timeout killed it."""

    returncode: int
    stdout: bytes
    stderr: bytes
    timed_out: bool = False


def script_env(base: Mapping[str, str], ctx: TaskContext) -> dict[str, str]:
    """The script's environment: the worker's own plus the task's identity."""
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


def kill_group(pgid: int) -> None:
    """SIGKILL every process of the group; a group that is already gone is fine."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


class ScriptExecutor:
    """Runs VNAS_SCRIPT once per task under VNAS_TASK_TIMEOUT_MS."""

    def __init__(self, script: str, timeout_s: float, base_env: Mapping[str, str] | None = None) -> None:
        self.script = script
        self._timeout_s = timeout_s
        # The script inherits the worker's environment (PATH, HOME, ...), captured once.
        self._base_env = dict(os.environ if base_env is None else base_env)

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

    def _check(self, run: ScriptRun, task_xml: bytes) -> bytes:
        details = f"{exit_description(run.returncode)}; stderr: {stderr_tail(run.stderr)}"
        if run.timed_out:
            raise TaskFailed(f"script ran past VNAS_TASK_TIMEOUT_MS ({int(self._timeout_s * 1000)} ms) and "
                             f"was killed with its process group; {details}")
        if run.returncode != 0:
            raise TaskFailed(f"script failed with {details}")
        try:
            return normalise_result(task_xml, run.stdout)
        except TaskFailed as exc:
            raise TaskFailed(f"script {exc}; {details}") from None

    async def spawn(self, ctx: TaskContext, task_xml: bytes) -> ScriptRun:
        """Run the script on `task_xml` (temp file + stdin); its temp file is removed afterwards."""
        fd, path = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=".xml")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(task_xml)
            child = process.start([self.script, path], script_env(self._base_env, ctx))
            try:
                return await self._communicate(child, task_xml)
            finally:
                process.close_pipes(child)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

    async def _communicate(self, child: subprocess.Popen[bytes], task_xml: bytes) -> ScriptRun:
        io = asyncio.ensure_future(process.exchange(child, task_xml))
        try:
            stdout, stderr = await asyncio.wait_for(asyncio.shield(io), self._timeout_s)
        except TimeoutError:
            stdout, stderr = await _kill_and_collect(child, io)
            return ScriptRun(child.returncode or -signal.SIGKILL, stdout, stderr, timed_out=True)
        except asyncio.CancelledError:
            # The caller gave up (shutdown, gRPC cancel): nothing of the task may keep running.
            await _kill_and_collect(child, io)
            raise
        finally:
            # Anything the script left behind in its group dies with the task.
            kill_group(child.pid)
        return ScriptRun(child.returncode if child.returncode is not None else -1, stdout, stderr)


async def _kill_and_collect(
    child: subprocess.Popen[bytes], io: asyncio.Future[tuple[bytes, bytes]]
) -> tuple[bytes, bytes]:
    kill_group(child.pid)
    try:
        return await asyncio.wait_for(asyncio.shield(io), PIPE_DRAIN_S)
    except TimeoutError:
        # A descendant left the group (setsid) and still holds the pipes: stop waiting for it.
        io.cancel()
        with contextlib.suppress(ProcessLookupError):
            child.kill()
        await process.wait_exit(child)
        return b"", b""
