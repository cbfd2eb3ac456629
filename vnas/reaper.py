"""Nothing a script starts outlives its task: the worker is a child subreaper and sweeps what is left.

A script runs in its own session, so its process group is killed with it. A descendant that calls
`setsid` (or forks twice) leaves that group, and once its parent exits it is normally reparented to
init, out of reach. With PR_SET_CHILD_SUBREAPER (Linux 3.4 and later, no privilege needed) such
orphans are reparented to the worker instead, so every process a script started is either below a
running script or a direct child of the worker, where a sweep finds it. A cgroup would contain the
tree as well, but needs a delegated hierarchy that a worker in a container rarely has; tracking
sessions misses a process that escapes between two looks.

Which task an orphan came from is recorded nowhere, so it is judged by start time: an orphan is
killed as soon as no script that started before it is still running. With one task at a time that is
the end of its own task; with several, a leftover may live until the tasks that ran beside it end (at
most VNAS_TASK_TIMEOUT_MS), and a process of a running task is never killed early.

Only the worker process adopts (`adopt_orphans`): every child it has is a script or what a script left,
which is not true of, say, a test runner that also started a redis-server.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os

from vnas import proctree

log = logging.getLogger(__name__)

PR_SET_CHILD_SUBREAPER = 36
# Sweeps after ordinary exits are batched: one costs a /proc scan (about 2 ms with 100 processes).
SWEEP_DELAY_S = 0.2


def become_subreaper() -> bool:
    """Make orphaned descendants of this process its children; False where the kernel cannot."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


class Reaper:
    """Kills a script with everything it started, and (when adopting) the orphans scripts leave behind."""

    def __init__(self, adopt_orphans: bool = False) -> None:
        self._adopt = adopt_orphans
        self.adopting = False
        self._running: dict[int, int] = {}  # script pid -> its start time, in clock ticks after boot
        self._sweep_due: asyncio.TimerHandle | None = None

    def starting(self) -> None:
        """Before a script starts: the first time, the worker becomes a subreaper.

        Before, not after: a process forked while the flag is being set may miss it, and its orphans
        would go to init.
        """
        if self._adopt and not self.adopting:
            self._adopt = False  # asked once: a kernel that says no will not change its mind
            self.adopting = become_subreaper()
            if not self.adopting:
                log.warning("cannot become a child subreaper; processes that leave a script's session "
                            "(setsid) outlive their task")

    def started(self, pid: int) -> None:
        """A script is running as `pid`."""
        proc = proctree.read_proc(pid) if self.adopting else None
        self._running[pid] = proc.start if proc is not None else 0

    def kill(self, pid: int) -> None:
        """Kill the script `pid`, every process below it and its process group (timeout, limit, cancel)."""
        proctree.kill_trees([pid])
        proctree.kill_group(pid)

    def finished(self, pid: int, sweep_now: bool) -> None:
        """The script `pid` was waited for: its group dies now, orphans at once or in a moment."""
        self._running.pop(pid, None)
        proctree.kill_group(pid)
        if not self.adopting:
            return
        if sweep_now:
            self.sweep()
        elif self._sweep_due is None:
            self._sweep_due = asyncio.get_running_loop().call_later(SWEEP_DELAY_S, self.sweep)

    def sweep(self) -> None:
        """Reap orphans that exited; kill (with their trees) those no running script can have started."""
        if not self.adopting:
            return  # not a subreaper: this process's children are not necessarily a script's
        if self._sweep_due is not None:
            self._sweep_due.cancel()
            self._sweep_due = None
        me = os.getpid()
        orphans = [p for p in proctree.snapshot().values() if p.ppid == me and p.pid not in self._running]
        for proc in orphans:
            if proc.zombie:
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(proc.pid, os.WNOHANG)
        oldest = min(self._running.values(), default=None)
        doomed = [p.pid for p in orphans if not p.zombie and (oldest is None or p.start < oldest)]
        if not doomed:
            return
        killed = proctree.kill_trees(doomed)
        log.warning("killed processes a script left behind", extra={"fields": {
            "count": len(killed), "pids": sorted(p.pid for p in killed)[:20]}})
        # They are zombies in a moment; the next sweep waits for them.
        self._sweep_due = asyncio.get_running_loop().call_later(SWEEP_DELAY_S, self.sweep)
