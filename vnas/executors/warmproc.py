"""One long-lived process speaking framed-v1 (vncommon.taskframes): one task at a time, never two.

It runs in its own session like a one-shot script, so a kill takes its whole process group and every
process below it (vnas.reaper). stderr is drained all the time (a full pipe would stall the process)
into a tail kept for error messages; stdout carries only frames, read one reply per task.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
from collections.abc import Mapping, Sequence

from vnas import limits, process
from vnas.executors.script import exit_description
from vnas.reaper import Reaper
from vncommon import taskframes

STDERR_TAIL_BYTES = 2048
# A process whose stdout ended is normally exiting: how long to wait for its exit code before killing it.
EXIT_WAIT_S = 1.0
# After the exit, how long stderr may take to deliver its last bytes (a leftover may hold it open).
STDERR_SETTLE_S = 0.2


class ProcessFailed(Exception):
    """The process crashed, exited or spoke something other than framed-v1; it cannot serve again."""


class WarmProcess:
    """A started process and its frame channel; `healthy` is False once it must be replaced."""

    def __init__(self, argv: Sequence[str], env: Mapping[str, str], reaper: Reaper, max_result_bytes: int) -> None:
        self._argv = list(argv)
        self._env = dict(env)
        self._reaper = reaper
        self._frames = taskframes.FrameReader(max_body=max_result_bytes)
        self._stderr = limits.TailBuffer(STDERR_TAIL_BYTES)
        self._child: subprocess.Popen[bytes] | None = None
        self._drain: asyncio.Task[None] | None = None
        self.greeted = False
        self.tasks_done = 0
        self.healthy = True

    @property
    def pid(self) -> int:
        return self._child.pid if self._child is not None else 0

    def start(self) -> None:
        """Start the process (OSError when it cannot be); its hello is awaited with the first task."""
        self._reaper.starting()
        self._child = process.start(self._argv, self._env)
        self._reaper.started(self._child.pid)
        assert self._child.stderr is not None
        self._drain = asyncio.ensure_future(process.read_to_eof(self._child.stderr.fileno(), self._stderr))

    async def exchange(self, task_xml: bytes, fields: Mapping[str, str]) -> taskframes.Frame:
        """Send one task and read its reply; ProcessFailed (and `healthy` False) when the process failed."""
        assert self._child is not None and self._child.stdin is not None
        self.healthy = False  # until the reply is in: a cancelled or timed-out exchange leaves it mid-frame
        self._stderr.clear()  # the tail of this task's stderr only
        await self.greet()
        try:
            await process.write_all(self._child.stdin.fileno(), taskframes.task_frame(task_xml, dict(fields)))
        except (BrokenPipeError, ConnectionResetError):
            raise ProcessFailed(await self._ended("before it read the task")) from None
        reply = await self._read_frame("during the task")
        if reply.kind not in (taskframes.RESULT, taskframes.ERROR):
            raise ProcessFailed(f"process answered the task with a {reply.kind!r} frame")
        self.tasks_done += 1
        self.healthy = True
        return reply

    async def greet(self) -> None:
        """Wait for the hello frame a freshly started process sends when it is ready (once)."""
        if self.greeted:
            return
        self.healthy = False
        hello = await self._read_frame("before it was ready")
        if hello.kind != taskframes.HELLO or hello.header.get("protocol") != taskframes.PROTOCOL:
            raise ProcessFailed(f"process did not start with a {taskframes.PROTOCOL} hello frame "
                                f"(got a {hello.kind!r} frame)")
        self.greeted = self.healthy = True

    async def _read_frame(self, when: str) -> taskframes.Frame:
        assert self._child is not None and self._child.stdout is not None
        fd = self._child.stdout.fileno()
        while True:
            try:
                frame = self._frames.next_frame()
            except taskframes.BodyTooLarge:
                raise
            except taskframes.FrameError as exc:
                raise ProcessFailed(f"process wrote a bad frame: {exc}") from None
            if frame is not None:
                return frame
            try:
                chunk = os.read(fd, limits.READ_CHUNK_BYTES)
            except BlockingIOError:
                await process.wait_ready(fd, writable=False)
                continue
            if not chunk:
                partial = f" after {self._frames.pending} bytes of a frame" if self._frames.pending else ""
                raise ProcessFailed(await self._ended(when) + partial)
            self._frames.feed(chunk)

    async def _ended(self, when: str) -> str:
        """What became of a process whose channel closed: its exit code when it exits in time."""
        assert self._child is not None
        try:
            code = await asyncio.wait_for(process.wait_exit(self._child), EXIT_WAIT_S)
        except TimeoutError:
            return f"process closed its frame channel {when} but kept running (it was killed)"
        if self._drain is not None:  # its last words, for the error message
            await asyncio.wait({self._drain}, timeout=STDERR_SETTLE_S)
        return f"process exited {when} with {exit_description(code)}"

    def stderr_tail(self) -> str:
        tail = self._stderr.value().decode("utf-8", errors="replace").strip()
        return tail or "(empty)"

    def rss_mb(self) -> float:
        """Resident memory of the process itself (0 when unreadable)."""
        with contextlib.suppress(OSError, ValueError), open(f"/proc/{self.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return 0.0

    def kill(self) -> None:
        """Kill the process with its group and everything below it, at once (also while cancelled)."""
        if self._child is not None and self._child.returncode is None:
            self._reaper.kill(self._child.pid)

    async def close(self) -> None:
        """Kill, wait for the exit and release the pipes; safe to call twice."""
        child = self._child
        if child is None:
            return
        self.kill()
        self.healthy = False
        try:
            if child.returncode is None:
                await process.wait_exit(child)
            self._reaper.finished(child.pid, sweep_now=True)
            if self._drain is not None:
                with contextlib.suppress(Exception):  # a leftover holding stderr, or the drain's own error
                    await asyncio.wait_for(asyncio.shield(self._drain), EXIT_WAIT_S)
        finally:
            if self._drain is not None:
                self._drain.cancel()
            process.close_pipes(child)  # even when the wait is cancelled: no pipe is left to the collector
            self._child = None
