"""vn-run stops the whole mesh when it alone gets SIGTERM: no service and no embedded Redis is left behind."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from vncommon.localmesh import ROOT, free_port

pytestmark = pytest.mark.timeout(90)


def test_sigterm_to_vn_run_alone_stops_every_service_and_the_embedded_redis(tmp_path: Path) -> None:
    ports = [free_port() for _ in range(4)]
    args = [f"--http-port={ports[0]}", f"--vnapi-port={ports[1]}", f"--vnvs-port={ports[2]}",
            f"--vnas-port={ports[3]}", "--vnas=1"]
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "HOME": str(tmp_path)}  # no REDIS_URL: embedded
    out = tmp_path / "out.txt"
    with open(out, "wb") as stdout:
        process = subprocess.Popen([sys.executable, "-m", "vncommon.launcher", *args], env=env, cwd=ROOT,
                                   stdout=stdout, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            started = time.monotonic()
            while "Press Ctrl-C" not in out.read_text():
                assert process.poll() is None, out.read_text()
                assert time.monotonic() - started < 60, out.read_text()
                time.sleep(0.1)
            children = psutil.Process(process.pid).children(recursive=True)
            assert len(children) >= 5  # redis-server, vnvs, vnas, vnapi, gateway (and their helpers)
            process.send_signal(signal.SIGTERM)  # to vn-run only, not its process group
            assert process.wait(timeout=45) == 0, out.read_text()
        finally:
            if process.poll() is None:
                process.kill()
    _, alive = psutil.wait_procs(children, timeout=10)
    left = [" ".join(survivor.cmdline()) for survivor in alive]
    for survivor in alive:  # left behind: stop it, then fail
        survivor.kill()
    assert not left, left
    assert "vn-run: stopped" in out.read_text()
