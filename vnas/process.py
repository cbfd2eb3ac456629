"""Child processes driven straight from the event loop: cheap to spawn, no child-watcher threads.

`asyncio.create_subprocess_exec` forks the whole worker under uvloop (which also runs gRPC's fork
handlers) and starts a watcher thread per child on the default loop. Here `subprocess.Popen` starts the
child (it uses vfork on Linux), the pipes are read and written without blocking, and the exit is
awaited on a pidfd, so a process costs little more than its own run time.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

CHUNK_BYTES = 64 * 1024


def start(argv: Sequence[str], env: Mapping[str, str]) -> subprocess.Popen[bytes]:
    """Start `argv` in a new session (its own process group) with all three streams piped."""
    child = subprocess.Popen(
        list(argv), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env=dict(env), start_new_session=True, close_fds=True,
    )
    for stream in (child.stdin, child.stdout, child.stderr):
        if stream is not None:
            os.set_blocking(stream.fileno(), False)
    return child


class Sink(Protocol):
    """Where output read from a pipe goes; `add` may raise to stop the run (a result over its limit)."""

    def room(self) -> int: ...

    def add(self, chunk: bytes) -> None: ...


async def pump(child: subprocess.Popen[bytes], data: bytes, stdout: Sink, stderr: Sink) -> None:
    """Feed `data` to stdin while reading stdout and stderr to EOF into their sinks.

    The exit is not awaited here: a descendant that keeps the pipes open must not hide that the
    child itself has ended. When a sink raises, the other streams stop too and the error propagates.
    """
    assert child.stdin is not None and child.stdout is not None and child.stderr is not None
    stdin = child.stdin
    streams = [asyncio.ensure_future(_feed(stdin.fileno(), data, stdin.close)),
               asyncio.ensure_future(read_to_eof(child.stdout.fileno(), stdout)),
               asyncio.ensure_future(read_to_eof(child.stderr.fileno(), stderr))]
    try:
        await asyncio.gather(*streams)
    finally:
        for stream in streams:
            stream.cancel()


def close_pipes(child: subprocess.Popen[bytes]) -> None:
    for stream in (child.stdin, child.stdout, child.stderr):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()


async def wait_exit(child: subprocess.Popen[bytes]) -> int:
    """The exit code, awaited without blocking the loop (and without a thread)."""
    try:
        pidfd = os.pidfd_open(child.pid)
    except (AttributeError, OSError):
        return await asyncio.to_thread(child.wait)  # no pidfd (old kernel): one thread per wait
    try:
        while child.poll() is None:
            await wait_ready(pidfd, writable=False)
    finally:
        os.close(pidfd)
    return int(child.returncode)


async def write_all(fd: int, data: bytes) -> None:
    """Write all of `data` to a non-blocking fd; BrokenPipeError when the reader is gone."""
    view = memoryview(data)
    while view:
        try:
            written = os.write(fd, view[:CHUNK_BYTES])
        except BlockingIOError:
            await wait_ready(fd, writable=True)
            continue
        view = view[written:]


async def _feed(fd: int, data: bytes, close: Callable[[], None]) -> None:
    try:
        await write_all(fd, data)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the script exited or closed stdin without reading all of it: that is its choice
    finally:
        with contextlib.suppress(OSError):
            close()  # EOF for a script that reads stdin to the end


async def read_to_eof(fd: int, sink: Sink) -> None:
    while True:
        try:
            chunk = os.read(fd, sink.room())
        except BlockingIOError:
            await wait_ready(fd, writable=False)
            continue
        if not chunk:
            return
        sink.add(chunk)


async def wait_ready(fd: int, writable: bool) -> None:
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    if writable:
        loop.add_writer(fd, wake)
    else:
        loop.add_reader(fd, wake)
    try:
        await ready
    finally:
        if writable:
            loop.remove_writer(fd)
        else:
            loop.remove_reader(fd)
