"""A script (or in-process pricer) that returns far too much fails fast with a clear error, the worker's
memory stays bounded while it reads, nothing unfetchable is stored, and the mesh refuses a response
larger than GetResults can return."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import grpc
import pytest
import redis.asyncio as redis

from tests.conftest import RedisServer
from tests.faults.support import channel_to, results, submit, wait_for_end
from tests.security.memory import peak_rss, reset_peak_rss, rss
from tests.security.script_support import branching_script, run_task, running, service_env, worker_pid
from tests.vnas.conftest import CTX, TASK_XML, price_of
from vn.v1 import valuation_pb2
from vnas.executors import PythonExecutor
from vncommon import keys

pytestmark = pytest.mark.timeout(120)

MIB = 1024 * 1024
DEFAULT_LIMIT = 10 * MIB  # PAYLOAD_MAX_BYTES's default
HUGE = 200_000_000
# Reading a 200 MB output may cost the worker its 10 MiB limit plus buffers, never the 200 MB.
RSS_ALLOWANCE = 40 * MIB
FAILS_WITHIN_S = 5.0


async def test_a_script_printing_200_mb_fails_fast_and_the_worker_stays_small(
        redis_server: RedisServer, redis_client: redis.Redis, tmp_path: Path) -> None:
    script = branching_script(tmp_path, {
        "huge-": f"    head -c {HUGE} /dev/zero | tr '\\0' 7",
        "noisy-": f"    head -c {HUGE} /dev/zero | tr '\\0' e >&2; echo THE-LAST-WORDS >&2; exit 1",
    })
    with running(service_env(redis_server.url, VNAS_SCRIPT=script), tmp_path / "logs") as mesh:
        pid = worker_pid(mesh)
        warm, _ = await run_task(redis_client, "warm-1")  # imports and pools are in place before measuring
        assert warm.status == "completed", warm.error
        baseline = rss(pid)
        reset_peak_rss(pid)

        update, took = await run_task(redis_client, "huge-1")
        assert update.status == "failed"
        assert update.error.startswith(f"result exceeds VNAS_MAX_RESULT_BYTES={DEFAULT_LIMIT} bytes"), update.error
        assert took < FAILS_WITHIN_S, took
        assert await redis_client.get(keys.task_result_key("huge-1", 0, "1")) is None  # nothing stored
        assert peak_rss(pid) - baseline < RSS_ALLOWANCE, (peak_rss(pid), baseline)

        # stderr is bounded too: only its tail is kept, and it is in the error.
        update, took = await run_task(redis_client, "noisy-1")
        assert update.status == "failed"
        assert "exit code 1" in update.error and "THE-LAST-WORDS" in update.error
        assert len(update.error) < 3000
        assert took < 4 * FAILS_WITHIN_S, took
        assert peak_rss(pid) - baseline < RSS_ALLOWANCE, (peak_rss(pid), baseline)

        update, _ = await run_task(redis_client, "normal-1")
        assert update.status == "completed", update.error
        assert price_of(await redis_client.get(keys.task_result_key("normal-1", 0, "1"))) == "42.00"


# Built by the test before it measures, so the peak it sees is the executor's, not the pricer's.
PREBUILT: list[bytes] = []


def huge_result(task_xml: bytes) -> bytes:
    """An in-process pricer returning a 50 MB valuation: well-formed, so parsing it would take gigabytes."""
    return PREBUILT[0]


async def test_an_in_process_result_over_the_limit_fails_before_it_is_parsed() -> None:
    PREBUILT[:] = [b"<valuation>%s</valuation>" % (b"<p/>" * (50_000_000 // 4))]
    executor = PythonExecutor("tests.security.test_result_size:huge_result", 30, max_result_bytes=DEFAULT_LIMIT)
    baseline = rss(os.getpid())
    reset_peak_rss(os.getpid())
    started = time.monotonic()
    try:
        outcome = await executor.run(CTX, TASK_XML)
    finally:
        PREBUILT.clear()
    took = time.monotonic() - started
    assert not outcome.completed
    assert f"result exceeds VNAS_MAX_RESULT_BYTES={DEFAULT_LIMIT} bytes (50000023 bytes)" in outcome.error
    assert took < 2, took
    # No copy and no parse tree of the 50 MB (a tree of 12.5 million elements would be gigabytes).
    assert peak_rss(os.getpid()) - baseline < RSS_ALLOWANCE, (peak_rss(os.getpid()), baseline)
    small = PythonExecutor("tests.vnas.pricers:flat_price", 5, max_result_bytes=DEFAULT_LIMIT)
    assert (await small.run(CTX, TASK_XML)).completed


def request(*names: str) -> bytes:
    valuations = "".join(f'<valuation name="{name}"><instrument name="{name}"/></valuation>' for name in names)
    return f'<vnml><project name="p"><group name="g">{valuations}</group></project></vnml>'.encode()


async def test_the_mesh_stores_no_response_that_get_results_could_not_return(
        redis_server: RedisServer, tmp_path: Path) -> None:
    # Each result is 20 KB, well under the limit; fourteen are over the response limit (4 x 64 KiB) together,
    # five are over PAYLOAD_MAX_BYTES but still a response GetResults returns.
    big = "    printf '<valuation name=\"%s\">' \"$VN_VALUATION_NAME\"; head -c 20000 /dev/zero | tr '\\0' x; " \
          "printf '</valuation>'"
    script = branching_script(tmp_path, {"big": big, "huge": "    head -c 100000 /dev/zero | tr '\\0' x"},
                              variable="VN_VALUATION_NAME")
    env = service_env(redis_server.url, VNAS_SCRIPT=script, PAYLOAD_MAX_BYTES="65536", MAX_TASK_RETRIES="1")
    with running(env, tmp_path / "logs", whole_mesh=True) as mesh:
        channel, api = channel_to(mesh.vnapi_address)
        async with channel:
            started = time.monotonic()
            too_big = await submit(api, request(*(f"big{i}" for i in range(14))))
            status = await wait_for_end(api, too_big, timeout=30)
            assert status.status == valuation_pb2.REQUEST_STATUS_FAILED
            detail = json.loads(status.failure_detail)
            assert detail["reason"] == "RESPONSE_TOO_LARGE", detail
            assert "more than 262144 bytes (4 x PAYLOAD_MAX_BYTES)" in detail["message"]
            assert time.monotonic() - started < 15

            one_huge = await submit(api, request("huge1"))
            status = await wait_for_end(api, one_huge, timeout=30)
            detail = json.loads(status.failure_detail)
            assert detail["reason"] == "TASK_RETRIES_EXHAUSTED", detail
            assert "result exceeds VNAS_MAX_RESULT_BYTES=65536 bytes" in detail["error"]
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await results(api, one_huge)
            assert caught.value.code() is grpc.StatusCode.FAILED_PRECONDITION

            fits = await submit(api, request(*(f"big{i}" for i in range(5))))
            status = await wait_for_end(api, fits, timeout=30)
            assert status.status == valuation_pb2.REQUEST_STATUS_SUCCEEDED, status.failure_detail
            assert len(await results(api, fits)) > 100_000 > 65536
