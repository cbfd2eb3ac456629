"""The process table as /proc shows it, and killing whole process trees without races.

Read straight from /proc rather than through psutil: one `stat` file per process gives its parent,
group, start time and state, which is all the reaper needs, and the worker takes no dependency for it.
Signals go through a pidfd opened after the start time was checked again, so a pid that was reused
between the scan and the signal is never hit.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Collection
from dataclasses import dataclass

# A tree is frozen (SIGSTOP) and scanned again until no new process shows up; a fork bomb gets this many
# rounds, after which whatever it forked in the meantime is orphaned to the worker and swept later.
MAX_FREEZE_ROUNDS = 8


@dataclass(frozen=True, slots=True)
class Proc:
    """One process: with the pid, the start time names it for its whole lifetime."""

    pid: int
    ppid: int
    pgid: int
    start: int  # clock ticks after boot
    zombie: bool


def read_proc(pid: int) -> Proc | None:
    """The process `pid`, or None once it is gone (or unreadable)."""
    try:
        fd = os.open(f"/proc/{pid}/stat", os.O_RDONLY)
    except OSError:
        return None
    try:
        data = os.read(fd, 4096)
    except OSError:
        return None
    finally:
        os.close(fd)
    # The command name is in parentheses and may hold spaces or parentheses itself: split after the last.
    fields = data[data.rfind(b")") + 2:].split(b" ", 20)
    try:
        return Proc(pid, int(fields[1]), int(fields[2]), int(fields[19]), fields[0] in (b"Z", b"X"))
    except (IndexError, ValueError):
        return None


def snapshot() -> dict[int, Proc]:
    """Every process this worker can see, by pid."""
    table: dict[int, Proc] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            proc = read_proc(int(name))
            if proc is not None:
                table[proc.pid] = proc
    return table


def descendants(roots: Collection[int], table: dict[int, Proc]) -> set[int]:
    """Every process below `roots` in `table` (the roots themselves not included)."""
    children: dict[int, list[int]] = {}
    for proc in table.values():
        children.setdefault(proc.ppid, []).append(proc.pid)
    found: set[int] = set()
    frontier = list(roots)
    while frontier:
        for child in children.get(frontier.pop(), ()):
            if child not in found:
                found.add(child)
                frontier.append(child)
    return found


def send(proc: Proc, signum: int) -> None:
    """Signal `proc` if it is still the same process; a process that is already gone is fine."""
    try:
        pidfd = os.pidfd_open(proc.pid)
    except ProcessLookupError:
        return
    except (AttributeError, OSError):  # no pidfd (old kernel): the start-time check must do
        current = read_proc(proc.pid)
        if current is not None and current.start == proc.start:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(proc.pid, signum)
        return
    try:
        current = read_proc(proc.pid)
        if current is not None and current.start == proc.start:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                signal.pidfd_send_signal(pidfd, signum)
    finally:
        os.close(pidfd)


def kill_trees(roots: Collection[int]) -> list[Proc]:
    """SIGKILL `roots` and everything below them; the processes killed.

    Each tree is first frozen with SIGSTOP and scanned again until nothing new appears, so no process can
    fork a child that escapes between the scan and the kill.
    """
    frozen: dict[int, Proc] = {}
    for _ in range(MAX_FREEZE_ROUNDS):
        table = snapshot()
        tree = {pid for pid in (*roots, *frozen) if pid in table}
        tree |= descendants(tree, table)
        fresh = [table[pid] for pid in tree if pid not in frozen]
        if not fresh:
            break
        for proc in fresh:
            send(proc, signal.SIGSTOP)
            frozen[proc.pid] = proc
    for proc in frozen.values():
        send(proc, signal.SIGKILL)
    return list(frozen.values())


def kill_group(pgid: int) -> None:
    """SIGKILL every process of the group; a group that is already gone is fine."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
