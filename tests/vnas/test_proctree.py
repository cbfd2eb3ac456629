"""Killing whole process trees from /proc: children that left the group die too, nothing else does."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from tests.vnas.conftest import process_alive, write_script
from vnas import proctree


def poll(check: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"condition not met within {timeout}s"
        time.sleep(0.02)


def test_read_proc_sees_this_process_and_its_parent() -> None:
    me = proctree.read_proc(os.getpid())
    assert me is not None and me.ppid == os.getppid() and not me.zombie
    assert proctree.read_proc(2**22 + 12345) is None


def test_kill_trees_kills_a_tree_with_a_setsid_child_and_spares_its_neighbour(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    script = write_script(tmp_path, f"setsid sleep 300 & echo $! >> '{pids}'; sleep 300 & echo $! >> '{pids}'; wait")
    tree = subprocess.Popen([script], start_new_session=True)
    neighbour = subprocess.Popen(["sleep", "300"])
    try:
        poll(lambda: pids.exists() and len(pids.read_text().split()) == 2)
        children = [int(pid) for pid in pids.read_text().split()]
        started = time.monotonic()
        killed = proctree.kill_trees([tree.pid])
        assert time.monotonic() - started < 1
        assert {tree.pid, *children} <= {proc.pid for proc in killed}
        assert tree.wait(timeout=5) == -9
        poll(lambda: not any(process_alive(pid) for pid in children))
        assert neighbour.poll() is None  # not below the root: untouched
    finally:
        for process in (neighbour, tree):
            if process.poll() is None:
                process.kill()
                process.wait()
