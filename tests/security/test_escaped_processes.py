"""Processes a script starts outside its session (setsid, double forks) die with their task, on a real
`python -m vnas`: when the script ends, when it times out, when the call is cancelled, when the worker
stops. Survivors are looked for in /proc by a marker in their command line."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
import uuid
from pathlib import Path

import grpc
import pytest
import redis.asyncio as redis

from tests.conftest import RedisServer, wait_until
from tests.security.memory import MIB, peak_rss
from tests.security.script_support import (
    branching_script,
    children_of,
    live_with,
    run_task,
    running,
    service_env,
    wait_gone,
    worker_pid,
)
from tests.vnas.conftest import TASK_XML, dispatch, price_of
from vn.v1 import task_pb2, task_pb2_grpc
from vncommon import keys
from vncommon.localmesh import free_port

pytestmark = pytest.mark.timeout(120)

# Every way out of the script's process group: a new session that keeps the pipes, one that closes
# them, a double fork through a subshell, and a daemon's double fork with setsid in between.
ESCAPES = """    setsid "{e}" 1000 &
    setsid "{e}" 1001 </dev/null >/dev/null 2>&1 &
    ( setsid "{e}" 1002 </dev/null >/dev/null 2>&1 & )
    /usr/bin/python3 -c 'import os, sys
if os.fork(): sys.exit(0)
os.setsid()
if os.fork(): sys.exit(0)
os.execv(sys.argv[1], [sys.argv[1], "1003"])' "{e}" </dev/null >/dev/null 2>&1
    sleep 0.3"""
ESCAPEES = 4
# However the task ends, its escapees are gone within this long.
GONE_WITHIN_S = 3.0
# The worker's own peak resident size through it all (about 60 MiB idle).
WORKER_PEAK_RSS = 200 * MIB


def escapee(tmp_path: Path) -> tuple[str, str]:
    """A `sleep` reachable under a unique name: (its path, the marker in its command line)."""
    marker = f"escapee-{uuid.uuid4().hex[:12]}"
    path = tmp_path / marker
    path.symlink_to("/bin/sleep")
    return str(path), marker


async def assert_serves_a_normal_task(client: redis.Redis, pid: int) -> None:
    update, took = await run_task(client, "normal-1")
    assert update.status == "completed", update.error
    assert price_of(await client.get(keys.task_result_key("normal-1", 0, "1"))) == "42.00"
    assert took < 5, took

    async def no_children() -> bool:  # scripts and their leftovers were all waited for: no zombies
        return not children_of(pid)

    await wait_until(no_children, timeout=5)
    assert peak_rss(pid) < WORKER_PEAK_RSS, peak_rss(pid) // MIB


async def test_escapees_die_when_the_script_ends(redis_server: RedisServer, redis_client: redis.Redis,
                                                 tmp_path: Path) -> None:
    path, marker = escapee(tmp_path)
    script = branching_script(tmp_path, {"escape-": ESCAPES.format(e=path) + "\n    echo 42"})
    with running(service_env(redis_server.url, VNAS_SCRIPT=script), tmp_path / "logs") as mesh:
        update, took = await run_task(redis_client, "escape-1")
        # The escapee holding the pipes does not make the task wait for it (VNAS_TASK_TIMEOUT_MS is 300 s).
        assert update.status == "completed", update.error
        assert took < 5, took
        assert await wait_gone(marker, GONE_WITHIN_S) < GONE_WITHIN_S
        await assert_serves_a_normal_task(redis_client, worker_pid(mesh))
        assert "killed processes a script left behind" in (tmp_path / "logs" / "vnas0.log").read_text()


async def test_escapees_die_when_the_script_times_out(redis_server: RedisServer, redis_client: redis.Redis,
                                                      tmp_path: Path) -> None:
    path, marker = escapee(tmp_path)
    script = branching_script(tmp_path, {"slow-": ESCAPES.format(e=path) + "\n    sleep 60"})
    env = service_env(redis_server.url, VNAS_SCRIPT=script, VNAS_TASK_TIMEOUT_MS="1500")
    with running(env, tmp_path / "logs") as mesh:
        update, took = await run_task(redis_client, "slow-1")
        assert update.status == "failed"
        assert "VNAS_TASK_TIMEOUT_MS (1500 ms)" in update.error
        assert took < 1.5 + GONE_WITHIN_S, took
        await wait_gone(marker, GONE_WITHIN_S)
        await assert_serves_a_normal_task(redis_client, worker_pid(mesh))


async def test_escapees_die_when_the_call_is_cancelled(redis_server: RedisServer, redis_client: redis.Redis,
                                                       tmp_path: Path) -> None:
    path, marker = escapee(tmp_path)
    script = branching_script(tmp_path, {"cancel-": ESCAPES.format(e=path) + "\n    sleep 60"})
    port = free_port()
    with running(service_env(redis_server.url, VNAS_SCRIPT=script), tmp_path / "logs", vnas_port=port) as mesh:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            call = task_pb2_grpc.TaskServiceStub(channel).ExecuteTask(
                task_pb2.ExecuteTaskRequest(request_id="cancel-1", task_id="1", task_xml=TASK_XML), timeout=3)
            await wait_started(marker)
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await call
        assert caught.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
        assert await wait_gone(marker, GONE_WITHIN_S) < GONE_WITHIN_S
        await assert_serves_a_normal_task(redis_client, worker_pid(mesh))


async def test_escapees_die_when_the_worker_stops_without_grace(
        redis_server: RedisServer, redis_client: redis.Redis, tmp_path: Path) -> None:
    path, marker = escapee(tmp_path)
    script = branching_script(tmp_path, {"stop-": ESCAPES.format(e=path) + "\n    sleep 60"})
    env = service_env(redis_server.url, VNAS_SCRIPT=script, VNAS_SHUTDOWN_GRACE_MS="0")
    with running(env, tmp_path / "logs") as mesh:
        await dispatch(redis_client, request_id="stop-1")
        await wait_started(marker)
        worker = mesh.processes["vnas0"]
        stopping = time.monotonic()
        worker.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(worker.wait, 20) == 0
        assert time.monotonic() - stopping < 10
        assert await wait_gone(marker, GONE_WITHIN_S) < GONE_WITHIN_S


async def wait_started(marker: str, count: int = ESCAPEES) -> None:
    """Until every escapee runs: a survivor check on processes that never started would prove nothing."""
    async def all_started() -> bool:
        return len(live_with(marker)) == count

    await wait_until(all_started, timeout=15)


async def test_a_task_ending_beside_a_running_one_leaves_the_running_ones_processes_alone(
        redis_server: RedisServer, redis_client: redis.Redis, tmp_path: Path) -> None:
    path, marker = escapee(tmp_path)
    script = branching_script(tmp_path, {"long-": f'    ( setsid "{path}" 2000 </dev/null >/dev/null 2>&1 & )\n'
                                                  f"    sleep 2.5; echo 42"})
    with running(service_env(redis_server.url, VNAS_SCRIPT=script, VNAS_CONCURRENCY="2"), tmp_path / "logs") as mesh:
        await dispatch(redis_client, request_id="long-1")
        await wait_started(marker, count=1)
        short, _ = await run_task(redis_client, "short-1")  # ends while long-1 runs, and sweeps
        assert short.status == "completed", short.error
        await asyncio.sleep(0.6)
        # The orphan may be long-1's (it started after long-1 did): it lives while long-1 runs.
        assert len(live_with(marker)) == 1

        async def long_done() -> bool:
            return await redis_client.get(keys.task_result_key("long-1", 0, "1")) is not None

        await wait_until(long_done, timeout=15)
        assert await wait_gone(marker, GONE_WITHIN_S) < GONE_WITHIN_S
        await assert_serves_a_normal_task(redis_client, worker_pid(mesh))


def test_the_marker_finds_a_live_escapee(tmp_path: Path) -> None:
    """The survivor check can fail: a process started under the marker is seen until it is killed."""
    path, marker = escapee(tmp_path)
    child = subprocess.Popen([path, "30"])
    try:
        deadline = time.monotonic() + 5
        while live_with(marker) != [child.pid] and time.monotonic() < deadline:
            assert child.poll() is None, f"the escapee exited with {child.returncode}"
            time.sleep(0.02)
        assert live_with(marker) == [child.pid]
    finally:
        child.kill()
        child.wait()
    assert live_with(marker) == []
