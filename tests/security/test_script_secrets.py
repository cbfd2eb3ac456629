"""The valuation script sees a minimal environment, never the mesh's secrets; a secret named in
VNAS_SCRIPT_ENV stops the worker at start; what a script prints reaches INFO logs of no service."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis.asyncio as redis

from tests.common.tls_certs import make_pki
from tests.conftest import ROOT, RedisServer
from tests.faults.support import channel_to, submit, wait_for_end
from tests.security.memory import MIB, peak_rss
from tests.security.script_support import (
    branching_script,
    environ_of,
    logs,
    run_task,
    running,
    service_env,
    worker_pid,
)
from tests.vnas.conftest import write_script
from vn.v1 import valuation_pb2
from vnas.scriptenv import BASICS, SAFE_PATH
from vncommon.service import EXIT_CONFIG

pytestmark = pytest.mark.timeout(120)

SECRETS = {
    "GRPC_API_TOKENS": "grpc-token-4f1d", "GATEWAY_API_TOKENS": "gateway-token-77aa",
    "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE9", "AWS_SECRET_ACCESS_KEY": "aws-secret-e3b0", "AWS_SESSION_TOKEN": "aws-st-1c2",
}
TASK_VARIABLES = {"VN_REQUEST_ID", "VN_GROUP_INDEX", "VN_TASK_ID", "VN_ATTEMPT", "VN_VALUATION_NAME", "VN_TRACE_ID"}


def env_dumping_script(directory: Path, out: Path) -> str:
    body = f"import json, os\njson.dump(dict(os.environ), open({str(out)!r}, 'w'))\nprint(42)"
    return write_script(directory, body, name="dump-env.py", shebang="#!/usr/bin/env python3")


async def test_the_script_gets_a_minimal_environment_without_secrets(
        redis_server: RedisServer, redis_client: redis.Redis, tmp_path: Path) -> None:
    out = tmp_path / "script-env.json"
    pki = make_pki(tmp_path)
    env = service_env(redis_server.url, VNAS_SCRIPT=env_dumping_script(tmp_path, out), **SECRETS, **pki.env(),
                      MARKET_DATA_URL="https://md.example/v1", VNAS_SCRIPT_ENV="MARKET_DATA_URL")
    with running(env, tmp_path / "logs") as mesh:
        started = time.monotonic()
        update, took = await run_task(redis_client, "env-1")
        assert update.status == "completed", update.error
        assert took < 5, took
        # The worker itself has them, so the checks below can fail.
        assert b"GRPC_API_TOKENS=grpc-token-4f1d" in environ_of(worker_pid(mesh))
        seen: dict[str, str] = json.loads(out.read_text())
        assert set(seen) <= {"PATH", "MARKET_DATA_URL", *BASICS, *TASK_VARIABLES}, sorted(seen)
        assert set(seen) >= TASK_VARIABLES
        assert seen["PATH"] == SAFE_PATH
        assert seen["MARKET_DATA_URL"] == "https://md.example/v1"
        assert seen["VN_REQUEST_ID"] == "env-1"
        everything = json.dumps(seen)
        for secret in (*SECRETS.values(), redis_server.url, str(pki.key), str(pki.cert), str(pki.ca)):
            assert secret not in everything, secret
        update, _ = await run_task(redis_client, "env-2")  # and it goes on serving
        assert update.status == "completed", update.error
        assert time.monotonic() - started < 15
        assert peak_rss(worker_pid(mesh)) < 200 * MIB, peak_rss(worker_pid(mesh)) // MIB


@pytest.mark.parametrize("secret", ["GRPC_API_TOKENS", "REDIS_URL", "GRPC_TLS_KEY_FILE", "AWS_SECRET_ACCESS_KEY"])
def test_a_secret_named_in_vnas_script_env_stops_the_worker_at_start(
        redis_server: RedisServer, tmp_path: Path, secret: str) -> None:
    env = service_env(redis_server.url, VNAS_SCRIPT=write_script(tmp_path, "echo 1"),
                      VNAS_SCRIPT_ENV=f"MARKET_DATA_URL,{secret}", PYTHONPATH=str(ROOT))
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "vnas"], env=env, cwd=ROOT, capture_output=True, timeout=30)
    assert done.returncode == EXIT_CONFIG, done.stderr
    assert f"VNAS_SCRIPT_ENV lists {secret}, a secret of the mesh".encode() in done.stderr
    assert time.monotonic() - started < 10


def request(*names: str) -> bytes:
    valuations = "".join(
        f'<valuation name="{name}"><instrument name="CONTENT-CANARY-{name}"><coupon>0.05</coupon></instrument>'
        f'<analytics><price><amount/></price></analytics></valuation>' for name in names)
    return f'<vnml><project name="p"><group name="g">{valuations}</group></project></vnml>'.encode()


async def test_script_output_and_request_content_reach_no_info_log(redis_server: RedisServer, tmp_path: Path) -> None:
    noisy = "    grep -o 'CONTENT-CANARY[^\"]*' \"$1\" >&2; echo STDERR-CANARY >&2; echo OUTPUT-CANARY; exit 0"
    script = branching_script(tmp_path, {"noisy": noisy}, variable="VN_VALUATION_NAME")
    env = service_env(redis_server.url, VNAS_SCRIPT=script, MAX_TASK_RETRIES="2")
    log_dir = tmp_path / "logs"
    with running(env, log_dir, whole_mesh=True) as mesh:
        channel, api = channel_to(mesh.vnapi_address)
        async with channel:
            started = time.monotonic()
            failing = await submit(api, request("noisy1"))
            status = await wait_for_end(api, failing, timeout=30)
            assert time.monotonic() - started < 15
            assert status.status == valuation_pb2.REQUEST_STATUS_FAILED
            detail = json.loads(status.failure_detail)
            # The stored failure detail keeps what the script said, for whoever asks for it.
            assert "STDERR-CANARY" in detail["error"] and "OUTPUT-CANARY" in detail["error"], detail
            assert "CONTENT-CANARY-noisy1" in detail["error"]
            fine = await submit(api, request("plain1"))
            status = await wait_for_end(api, fine, timeout=30)
            assert status.status == valuation_pb2.REQUEST_STATUS_SUCCEEDED, status.failure_detail
    text = logs(log_dir)
    assert '"msg": "task failed"' in text and '"msg": "task attempt failed; retrying"' in text
    assert '"msg": "request failed"' in text
    assert "script output is neither XML nor a single number" in text  # the summary stays at INFO
    for canary in ("STDERR-CANARY", "OUTPUT-CANARY", "CONTENT-CANARY"):
        assert canary not in text, canary


async def test_at_debug_the_worker_logs_what_the_script_said(
        redis_server: RedisServer, redis_client: redis.Redis, tmp_path: Path) -> None:
    """The counterpart of the INFO check: the same failure at DEBUG carries the stderr tail."""
    script = branching_script(tmp_path, {"noisy-": "    echo STDERR-CANARY >&2; exit 4"})
    log_dir = tmp_path / "logs"
    with running(service_env(redis_server.url, VNAS_SCRIPT=script, LOG_LEVEL="DEBUG"), log_dir):
        update, _ = await run_task(redis_client, "noisy-1")
        assert update.status == "failed" and "STDERR-CANARY" in update.error
    assert "STDERR-CANARY" in logs(log_dir)
