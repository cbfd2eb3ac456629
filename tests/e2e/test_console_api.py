"""The console's JSON and the server-sent event stream, over real HTTP against a real mesh."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as redis

from tests.e2e.conftest import EXAMPLES, MeshFactory
from tests.e2e.helpers import simple_request, write_script
from vncommon import keys

pytestmark = pytest.mark.timeout(90)
TOKEN = "console-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def parse_sse(raw: str) -> tuple[list[dict[str, Any]], int]:
    """(events with name/id/data, heartbeat comment count) of an event-stream body."""
    events, beats = [], 0
    for block in raw.replace("\r\n", "\n").split("\n\n"):
        if not block.strip():
            continue
        if block.startswith(":"):
            beats += 1
            continue
        event: dict[str, Any] = {"id": None}
        for line in block.split("\n"):
            field, _, value = line.partition(": ")
            event[field] = value
        event["data"] = json.loads(event["data"])
        events.append(event)
    return events, beats


async def submit(session: aiohttp.ClientSession, base: str, xml: bytes) -> str:
    async with session.post(f"{base}/valuation", data=xml, headers={**AUTH, "Content-Type": "application/xml"}) as r:
        assert r.status == 202, await r.text()
        return str((await r.json())["requestId"])


async def read_stream(session: aiohttp.ClientSession, url: str, **headers: str) -> tuple[int, str, str]:
    async with session.get(url, headers={**AUTH, **headers}, timeout=aiohttp.ClientTimeout(total=60)) as r:
        return r.status, r.headers.get("Content-Type", ""), await r.text()


async def test_events_stream_every_lifecycle_event_with_ids_progress_and_resume(
        start_mesh: MeshFactory, tmp_path: Path) -> None:
    slow = write_script(tmp_path, "slow.sh", f'sleep 0.4\nexec {sys.executable} {EXAMPLES / "price.py"}\n')
    # Two tasks at a time (one per worker), so the six of a group finish in three waves and progress is
    # seen between 0 and 6.
    mesh = start_mesh(VNAS_SCRIPT=str(slow), GATEWAY_API_TOKENS=TOKEN, GATEWAY_SSE_HEARTBEAT_MS="200",
                      GATEWAY_SSE_PROGRESS_MS="100", VNAS_CONCURRENCY="1")
    async with aiohttp.ClientSession() as session:
        request_id = await submit(session, mesh.http, simple_request(groups=2, tasks=6))
        status, kind, body = await read_stream(session, f"{mesh.http}/valuation/{request_id}/events")
        assert status == 200 and kind.startswith("text/event-stream")
        events, beats = parse_sse(body)
        lifecycle = [e for e in events if e["event"] != "progress"]
        assert [e["event"] for e in lifecycle] == ["received", "started", "group_started", "group_completed",
                                                    "group_started", "group_completed", "succeeded"]
        assert [int(e["id"]) for e in lifecycle] == list(range(1, 8))
        assert lifecycle[2]["data"]["groupIndex"] == 0
        progress = [e for e in events if e["event"] == "progress"]
        assert progress and all(e["id"] is None for e in progress)
        assert all(e["data"]["tasksExpected"] in (0, 6) for e in progress)
        assert any(0 < e["data"]["tasksCompleted"] < 6 for e in progress), progress
        assert beats >= 1
        # A reconnect resumes after the event it names and still ends with the terminal event.
        _, _, resumed = await read_stream(session, f"{mesh.http}/valuation/{request_id}/events",
                                          **{"Last-Event-ID": "4"})
        again, _ = parse_sse(resumed)
        assert [int(e["id"]) for e in again if e["event"] != "progress"] == [5, 6, 7]


async def test_events_refuse_unknown_ids_bad_resume_points_and_missing_tokens(start_mesh: MeshFactory) -> None:
    mesh = start_mesh(GATEWAY_API_TOKENS=TOKEN)
    async with aiohttp.ClientSession() as session:
        status, _, body = await read_stream(session, f"{mesh.http}/valuation/nosuchrequest/events")
        assert status == 404 and "REQUEST_NOT_FOUND" in body
        request_id = await submit(session, mesh.http, simple_request())
        status, _, body = await read_stream(session, f"{mesh.http}/valuation/{request_id}/events",
                                            **{"Last-Event-ID": "abc"})
        assert status == 400 and "Last-Event-ID" in body
        async with session.get(f"{mesh.http}/valuation/{request_id}/events") as r:
            assert r.status == 401
        async with session.get(f"{mesh.http}/console/api/requests") as r:
            assert r.status == 401
        async with session.get(f"{mesh.http}/console") as r:  # the page holds no data; it asks for the token
            assert r.status == 200 and "script-src 'self'" in r.headers["Content-Security-Policy"]
        async with session.get(f"{mesh.http}/console/static/app.js") as r:
            assert r.status == 200 and "javascript" in r.headers["Content-Type"]
        async with session.get(f"{mesh.http}/console/api/requests?status=bogus", headers=AUTH) as r:
            assert r.status == 400 and "status must be one of" in (await r.json())["message"]
        async with session.get(f"{mesh.http}/console/api/requests?limit=9999", headers=AUTH) as r:
            assert r.status == 400


async def test_console_lists_requests_and_shows_groups_tasks_retries_and_failures(
        start_mesh: MeshFactory, tmp_path: Path, redis_client: redis.Redis) -> None:
    # The recent-request index is shared by every test on the session Redis: redis_client flushes it first.
    # Task 2 fails once per attempt file, then succeeds; task 3 of a second request never succeeds.
    flaky = write_script(tmp_path, "flaky.sh", f'''
input=$(cat)
case "$input" in
  *'name="I2"'*)
    if [ ! -e {tmp_path}/retried ]; then touch {tmp_path}/retried; echo "curve not ready" >&2; exit 3; fi ;;
  *'name="I3"'*) echo "no curve for this instrument" >&2; exit 4 ;;
esac
printf '%s' "$input" | exec {sys.executable} {EXAMPLES / "price.py"}
''')
    mesh = start_mesh(VNAS_SCRIPT=str(flaky), MAX_TASK_RETRIES="2")
    async with aiohttp.ClientSession() as session:
        good = await submit(session, mesh.http, simple_request(groups=2, tasks=2))
        await read_stream(session, f"{mesh.http}/valuation/{good}/events")
        bad = await submit(session, mesh.http, simple_request(groups=1, tasks=3))
        await read_stream(session, f"{mesh.http}/valuation/{bad}/events")
        async with session.get(f"{mesh.http}/console/api/requests") as r:
            listed = (await r.json())["requests"]
        assert [item["requestId"] for item in listed[:2]] == [bad, good]
        first = next(item for item in listed if item["requestId"] == good)
        assert first["status"] == "succeeded" and first["priority"] == "normal"
        assert (first["groupsCompleted"], first["groupCount"], first["tasksCompleted"], first["tasksTotal"]) == (
            2, 2, 4, 4)
        async with session.get(f"{mesh.http}/console/api/requests?status=failed") as r:
            assert [item["requestId"] for item in (await r.json())["requests"]] == [bad]
        async with session.get(f"{mesh.http}/console/api/requests?q={good[4:12]}") as r:
            assert [item["requestId"] for item in (await r.json())["requests"]] == [good]
        async with session.get(f"{mesh.http}/console/api/requests/{good}") as r:
            detail = await r.json()
        assert detail["canCancel"] is False and detail["retryCount"] == 1, detail
        group = detail["groups"][0]
        assert group["status"] == "completed" and group["tasksRecorded"] == 2 and group["tasksRetried"] == 1
        assert group["troubled"][0]["attempt"] == 2 and "curve not ready" in group["troubled"][0]["error"]
        assert group["startedAt"] and group["completedAt"] and len(group["slowest"]) == 2
        assert all(t["worker"] for t in group["slowest"])
        async with session.get(f"{mesh.http}/console/api/requests/{bad}") as r:
            failed = await r.json()
        assert failed["status"]["status"] == "failed" and "no curve" in json.dumps(failed["status"]["detail"])
        assert failed["groups"][0]["troubled"][0]["status"] == "failed"
        async with session.get(f"{mesh.http}/console/api/workers") as r:
            workers = await r.json()
        live = {c["name"] for c in workers["consumers"] if c["live"]}
        vnas = [pid for name, pid in mesh.pids().items() if name.startswith("vnas")]
        assert len(vnas) == 2 and all(any(n.endswith(f"-{pid}") for n in live) for pid in vnas), workers
        layouts = (int(mesh.env.get("STREAM_SHARDS", "1")),)  # every shard of each stream is listed
        assert {s["stream"] for s in workers["streams"]} == {*keys.all_dispatch_streams(layouts),
                                                             *keys.ingest_streams(layouts)}
        async with session.get(f"{mesh.http}/console/api/requests/nosuch") as r:
            assert r.status == 404
    ttl = await redis_client.ttl(keys.task_attempts_key(good, 0))
    assert 0 < ttl <= 86_400 * 7
    assert await redis_client.zscore(keys.RECENT_REQUESTS, good) is not None
    await asyncio.sleep(0)
