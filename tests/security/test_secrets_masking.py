"""Passwords in URLs never reach a terminal: `vn-run` shows REDIS_URL masked, and every JSON log line masks
`scheme://user:password@` (and `?password=`) in its message, fields, context and traceback."""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.e2e.helpers import simple_request
from tests.security.auth_support import mesh_env
from vncommon.localmesh import free_port, free_ports, redis_server_binary, stop_processes, wait_for_port
from vncommon.logs import JsonFormatter, log_context, mask_secrets, setup_logging

pytestmark = pytest.mark.timeout(120)
SECRET = "s3cret-Pa55"
START_BOUND_S = 60.0


def _formatted(record_args: dict[str, object], message: str, exc: BaseException | None = None) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("test"))
    logger = logging.getLogger("tests.security.masking")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        if exc is None:
            logger.warning(message, extra=record_args)
        else:
            try:
                raise exc
            except BaseException:
                logger.exception(message, extra=record_args)
    finally:
        logger.removeHandler(handler)
    return stream.getvalue()


def test_a_log_line_masks_url_passwords_in_its_message_fields_context_and_traceback() -> None:
    with log_context(source=f"rediss://admin:{SECRET}@cache:6380/1"):
        line = _formatted(
            {"fields": {"url": f"redis://:{SECRET}@127.0.0.1:6379/0", "nested": {"urls": [f"amqp://u:{SECRET}@q"]},
                        "error": ConnectionError(f"cannot reach redis://user:{SECRET}@h:1"),
                        "socket": f"unix:///run/redis.sock?db=0&password={SECRET}"}},
            f"connecting to redis://:{SECRET}@10.0.0.5:6379/0",
            exc=RuntimeError(f"failed on redis://default:{SECRET}@10.0.0.5:6379"),
        )
    assert SECRET not in line
    parsed = json.loads(line)  # masking keeps the line valid JSON
    assert parsed["msg"] == "connecting to redis://:***@10.0.0.5:6379/0"
    assert parsed["url"] == "redis://:***@127.0.0.1:6379/0"
    assert parsed["source"] == "rediss://admin:***@cache:6380/1"
    assert parsed["nested"] == {"urls": ["amqp://u:***@q"]}
    assert parsed["socket"].endswith("password=***")
    assert "redis://default:***@10.0.0.5:6379" in parsed["exc"]


def test_masking_leaves_urls_without_a_password_and_other_text_alone() -> None:
    for text in ("redis://127.0.0.1:6379/0", "http://host:8080/path?q=a@b", "user@example.com", "12:30@noon",
                 "s3://bucket/key", "http://only-user@host/"):
        assert mask_secrets(text) == text
    for filler in ("x" * 1_000_000, "a." * 500_000, "a://b:" * 150_000, "a:" * 500_000):
        started = time.perf_counter()
        assert mask_secrets(filler + " redis://:pw@h").endswith("redis://:***@h")
        assert time.perf_counter() - started < 1.0, filler[:8]  # linear: hostile text cannot stall a log line


def test_the_handler_every_service_installs_masks_its_lines(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        setup_logging("vnapi", "INFO")
        logging.getLogger("vnapi.anything").info("redis at redis://:%s@h:6379/0", SECRET)
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    err = capsys.readouterr().err
    assert SECRET not in err and "redis://:***@h:6379/0" in err


@pytest.fixture
def password_redis(tmp_path: Path) -> Iterator[str]:
    """A private redis-server that requires a password; its URL, password included."""
    port = free_port()
    process = subprocess.Popen([redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                "--appendonly", "no", "--dir", str(tmp_path), "--requirepass", SECRET],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, process, "redis-server", timeout=10)
        yield f"redis://:{SECRET}@127.0.0.1:{port}/0"
    finally:
        stop_processes([process])


def _post_sync(port: int) -> int:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/valuation?sync=Y", data=simple_request(),
                                     headers={"Content-Type": "application/xml"}, method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        return int(response.status)


def test_vn_run_shows_redis_url_with_its_password_masked_and_the_mesh_it_starts_serves(
    password_redis: str, tmp_path: Path
) -> None:
    http_port, *grpc_ports = free_ports(4)
    ports = [f"--{name}-port={port}" for name, port in zip(("vnapi", "vnvs", "vnas"), grpc_ports, strict=True)]
    env = {**mesh_env(password_redis), "PYTHONPATH": str(ROOT), "LOG_LEVEL": "INFO"}
    out, err = tmp_path / "out.txt", tmp_path / "err.txt"
    with open(out, "wb") as stdout, open(err, "wb") as stderr:
        started = time.perf_counter()
        process = subprocess.Popen([sys.executable, "-m", "vncommon.launcher", f"--http-port={http_port}", *ports,
                                    "--vnas=1"], env=env, cwd=ROOT, stdout=stdout, stderr=stderr,
                                   start_new_session=True)
        try:
            while "Press Ctrl-C" not in out.read_text():
                assert process.poll() is None, err.read_text()
                assert time.perf_counter() - started < START_BOUND_S
                time.sleep(0.1)
            assert _post_sync(http_port) == 200
        finally:
            os.killpg(process.pid, signal.SIGINT)  # Ctrl-C reaches vn-run and the services alike
            process.wait(timeout=30)
    assert f"redis://:***@127.0.0.1:{password_redis.rsplit(':', 1)[1]}" in out.read_text()
    assert SECRET not in out.read_text() + err.read_text()
