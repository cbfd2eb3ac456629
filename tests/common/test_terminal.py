"""The mesh and `vn` at a terminal: readable log lines on a TTY (JSON otherwise), no traceback for a
closed pipe or Ctrl-C."""

from __future__ import annotations

import json
import logging
import os
import pty
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.e2e.helpers import simple_request, write_script
from vncommon.errors import ConfigError
from vncommon.localmesh import free_port
from vncommon.logs import JsonFormatter, TextFormatter, log_format

pytestmark = pytest.mark.timeout(120)
BIN = Path(sys.executable).parent


class _Stream:
    def __init__(self, tty: bool) -> None:
        self._tty = tty

    def isatty(self) -> bool:
        return self._tty


def test_log_format_is_text_on_a_terminal_json_elsewhere_and_as_asked() -> None:
    assert log_format({}, _Stream(True)) == "text"  # type: ignore[arg-type]
    assert log_format({}, _Stream(False)) == "json"  # type: ignore[arg-type]
    assert log_format({"LOG_FORMAT": "json"}, _Stream(True)) == "json"  # type: ignore[arg-type]
    assert log_format({"LOG_FORMAT": "TEXT"}, _Stream(False)) == "text"  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="LOG_FORMAT"):
        log_format({"LOG_FORMAT": "xml"}, _Stream(True))  # type: ignore[arg-type]


def test_text_lines_carry_the_same_fields_masked() -> None:
    record = logging.LogRecord("vnapi.x", logging.WARNING, __file__, 1, "lost redis", None, None)
    record.fields = {"url": "redis://:hunter2@db:6379", "attempt": 3}
    text = TextFormatter("vnapi").format(record)
    assert "WARNING" in text and "lost redis" in text and "attempt=3" in text
    assert "hunter2" not in text and not text.startswith("{")
    assert json.loads(JsonFormatter("vnapi").format(record))["attempt"] == 3


def _read_until(fd: int, needle: bytes, timeout_s: float) -> bytes:
    seen = b""
    deadline = time.monotonic() + timeout_s
    while needle not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                seen += os.read(fd, 65536)
            except OSError:
                break
    return seen


@pytest.fixture
def default_ctrl_c() -> Iterator[None]:
    """Children start with the terminal's Ctrl-C: a test run started in the background has SIGINT ignored
    (as a shell does for `cmd &`), and processes inherit an ignored signal, not a handler."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_make_run_prints_readable_lines_on_a_terminal_and_vn_exits_quietly(tmp_path: Path, default_ctrl_c: None
                                                                            ) -> None:
    slow = write_script(tmp_path, "slow.sh", "sleep 8\n")
    request = tmp_path / "request.xml"
    request.write_bytes(simple_request())
    http, vnapi = free_port(), free_port()
    base = {k: v for k, v in os.environ.items() if not k.startswith(("VN", "REDIS", "HYDRATION", "GRPC", "LOG"))}
    env = {**base, "VNAS_SCRIPT": str(slow), "HTTP_PORT": str(http)}
    primary, secondary = pty.openpty()
    run = subprocess.Popen([str(BIN / "vn-run"), "--vnapi-port", str(vnapi), "--vnvs-port", str(free_port()),
                            "--vnas-port", str(free_port()), "--vnas", "1"],
                           stdin=secondary, stdout=secondary, stderr=secondary, env=env, cwd=ROOT,
                           start_new_session=True)
    os.close(secondary)
    try:
        seen = _read_until(primary, b"Press Ctrl-C to stop.", 60)
        assert b"Press Ctrl-C to stop." in seen, seen[-2000:]
        lines = [line for line in seen.decode(errors="replace").splitlines() if " INFO " in line]
        assert lines, seen[-2000:]  # readable lines: time, level, service, message
        assert not any(line.lstrip().startswith('{"ts"') for line in seen.decode(errors="replace").splitlines())
        vn_env = {**base, "VNAPI_ADDRESS": f"127.0.0.1:{vnapi}"}
        # Ctrl-C during a sync wait: exit 130, no traceback.
        submit = subprocess.Popen([str(BIN / "vn"), "submit", "--sync", str(request)], env=vn_env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        # Once the mesh logged the hand-over, the client is in its sync wait (not still starting up).
        handed = _read_until(primary, b"request handed to orchestrator", 60)
        assert b"request handed to orchestrator" in handed, handed[-2000:]
        time.sleep(0.5)
        submit.send_signal(signal.SIGINT)
        out, err = submit.communicate(timeout=20)
        assert submit.returncode == 130, (out, err)
        assert b"Traceback" not in err and b"KeyboardInterrupt" not in err, err
        # A reader that leaves early (`vn watch … | head -1`): no traceback, exit 0.
        started = subprocess.run([str(BIN / "vn"), "submit", str(request)], env=vn_env, capture_output=True,
                                 timeout=20, check=True)
        request_id = started.stdout.decode().strip()
        piped = subprocess.run(f"'{BIN / 'vn'}' watch --json {request_id} | head -1", shell=True, env=vn_env,
                               capture_output=True, timeout=40)
        assert json.loads(piped.stdout.decode().splitlines()[0])["status"] == "received"
        assert b"Traceback" not in piped.stderr and b"BrokenPipe" not in piped.stderr, piped.stderr
    finally:
        os.killpg(run.pid, signal.SIGINT)
        try:
            run.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait(timeout=10)
        os.close(primary)
