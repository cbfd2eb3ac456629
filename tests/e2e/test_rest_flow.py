"""End to end over REST: the gateway in front of a real mesh, every row of the REST table."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import RedisServer
from tests.e2e.conftest import Mesh, MeshFactory
from tests.e2e.helpers import amounts, example_request, simple_request, write_script
from vncommon import keys

pytestmark = pytest.mark.timeout(120)
XML = {"Content-Type": "application/xml"}
LIMIT = 10 * 1024 * 1024


async def poll_status(http: aiohttp.ClientSession, mesh: Mesh, request_id: str, until: set[str]) -> dict[str, object]:
    for _ in range(1500):
        async with http.get(f"{mesh.http}/valuation/{request_id}/status") as response:
            assert response.status == 200
            body = await response.json()
        if body["status"] in until:
            return dict(body)
        await asyncio.sleep(0.02)
    raise AssertionError(f"request {request_id} never reached {until}")


async def test_async_submit_then_status_then_results_over_rest(start_mesh: MeshFactory) -> None:
    mesh = start_mesh()
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{mesh.http}/valuation", data=example_request(), headers=XML) as response:
            assert response.status == 202
            accepted = await response.json()
        assert accepted["status"] == "accepted"
        status = await poll_status(http, mesh, accepted["requestId"], {"succeeded", "failed"})
        assert status["status"] == "succeeded", mesh.log_tail()
        assert status["groupCount"] == 3 and status["completedAt"] is not None
        async with http.get(f"{mesh.http}/valuation/{accepted['requestId']}/results") as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("application/xml")
            xml = await response.read()
        assert len(amounts(xml, 0)) == 3

        async with http.post(f"{mesh.http}/valuation?sync=Y", data=example_request(), headers=XML) as response:
            assert response.status == 200
            sync_xml = await response.read()
            request_id = sync_xml.split(b'requestId="')[1].split(b'"')[0].decode()
        async with http.get(f"{mesh.http}/valuation/{request_id}/results") as response:
            assert await response.read() == sync_xml


async def test_rest_error_rows_against_the_real_mesh(start_mesh: MeshFactory, tmp_path: Path) -> None:
    slow = write_script(tmp_path, "slow.sh", 'sleep 2\necho 100\n')
    mesh = start_mesh(VNAS_SCRIPT=str(slow), SYNC_WAIT_TIMEOUT_MS="300")
    body = simple_request(tasks=1)
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{mesh.http}/valuation?sync=maybe", data=body, headers=XML) as response:
            assert response.status == 400
        async with http.post(f"{mesh.http}/valuation", data=b"", headers=XML) as response:
            assert response.status == 400
        async with http.post(f"{mesh.http}/valuation", data=b"<vnml>\n<project>", headers=XML) as response:
            assert response.status == 400
            error = await response.json()
            assert error["line"] == 2 and "column" in error and error["message"]
        namespaced = b'<vnml xmlns="urn:x"><project><group><valuation name="v"/></group></project></vnml>'
        async with http.post(f"{mesh.http}/valuation?sync=Y", data=namespaced, headers=XML) as response:
            assert response.status == 400  # not a 200 with an empty <vnml-response>
            error = await response.json()
            assert error["reason"] == "INVALID_VNML" and "no namespace" in error["message"]
        async with http.post(f"{mesh.http}/valuation", data=body, headers={"Content-Type": "text/plain"}) as r:
            assert r.status == 415
        async with http.post(f"{mesh.http}/valuation", data=body, headers={**XML, "Idempotency-Key": "k1"}) as r:
            assert r.status == 202
        async with http.post(f"{mesh.http}/valuation", data=body + b" ", headers={**XML, "Idempotency-Key": "k1"}) as r:
            assert r.status == 409
        async with http.get(f"{mesh.http}/valuation/nope/status") as response:
            assert response.status == 404
        async with http.get(f"{mesh.http}/valuation/nope/results") as response:
            assert response.status == 404
        # Still running: results are not there yet, and a sync caller gets 202 pending after the wait.
        async with http.post(f"{mesh.http}/valuation?sync=y", data=body, headers=XML) as response:
            assert response.status == 202
            pending = await response.json()
            assert pending["status"] == "pending"
        async with http.get(f"{mesh.http}/valuation/{pending['requestId']}/results") as response:
            assert response.status == 404
            not_ready = await response.json()
            assert not_ready["message"] == "Result not yet available" and not_ready["status"] in ("received", "started")
        async with http.get(f"{mesh.http}/healthz") as response:
            assert response.status == 200 and (await response.json())["status"] == "ok"


async def test_payload_limit_is_exact_at_the_gateway(start_mesh: MeshFactory) -> None:
    mesh = start_mesh()
    base = simple_request(tasks=1)
    # Padding in comments of 1 MiB at most (libxml2 caps one text node at 10 MB).
    room = LIMIT - len(base)
    comments = [b"<!--" + b"x" * (min(room - i * 2**20, 2**20) - 7) + b"-->" for i in range(-(-room // 2**20))]
    exactly = base.replace(b"<vnml>", b"".join(comments) + b"<vnml>", 1)
    assert len(exactly) == LIMIT
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{mesh.http}/valuation", data=io.BytesIO(exactly), headers=XML) as response:
            assert response.status == 202, await response.text()
            accepted = await response.json()
        async with http.post(f"{mesh.http}/valuation", data=io.BytesIO(exactly + b" "), headers=XML) as response:
            assert response.status == 413
        # A request at the limit runs to the end too (and the mesh stops idle, not mid-request).
        status = await poll_status(http, mesh, accepted["requestId"], {"succeeded", "failed"})
        assert status["status"] == "succeeded", mesh.log_tail()


async def test_failed_request_answers_500_when_sync_and_422_on_results(start_mesh: MeshFactory, tmp_path: Path) -> None:
    broken = write_script(tmp_path, "broken.sh", 'echo "no curve" >&2\nexit 9\n')
    mesh = start_mesh(VNAS_SCRIPT=str(broken), MAX_TASK_RETRIES="1")
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{mesh.http}/valuation?sync=Y", data=simple_request(tasks=1), headers=XML) as r:
            assert r.status == 500
            failed = await r.json()
        assert failed["message"] == "Processing failed" and failed["requestId"] and failed["detail"]
        async with http.get(f"{mesh.http}/valuation/{failed['requestId']}/results") as response:
            assert response.status == 422
            body = await response.json()
        assert body["status"] == "failed" and body["requestId"] == failed["requestId"] and body["detail"]


async def test_results_of_a_purged_request_answer_410(start_mesh: MeshFactory, redis_server: RedisServer) -> None:
    mesh = start_mesh(REQUEST_TTL_SECONDS="1")
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{mesh.http}/valuation?sync=Y", data=simple_request(tasks=2), headers=XML) as r:
            assert r.status == 200
            request_id = (await r.read()).split(b'requestId="')[1].split(b'"')[0].decode()
        client = redis_server.client()
        try:
            for _ in range(300):
                left = [k async for k in client.scan_iter(match=f"*{{{request_id}}}*")]
                if left == [keys.tombstone_key(request_id).encode()]:
                    break
                await asyncio.sleep(0.05)
            assert left == [keys.tombstone_key(request_id).encode()]
        finally:
            await client.aclose()
        async with http.get(f"{mesh.http}/valuation/{request_id}/results") as response:
            assert response.status == 410


async def test_twenty_concurrent_submissions_with_one_key_run_once(start_mesh: MeshFactory,
                                                                   redis_server: RedisServer) -> None:
    mesh = start_mesh()
    headers = {**XML, "Idempotency-Key": "same-key"}
    body = simple_request(tasks=2)

    async def submit(http: aiohttp.ClientSession) -> str:
        async with http.post(f"{mesh.http}/valuation", data=body, headers=headers) as response:
            assert response.status == 202
            return str((await response.json())["requestId"])

    async with aiohttp.ClientSession() as http:
        ids = await asyncio.gather(*(submit(http) for _ in range(20)))
        assert len(set(ids)) == 1
        await poll_status(http, mesh, ids[0], {"succeeded"})
    client = redis_server.client()
    try:
        events = await client.lrange(keys.request_events_key(ids[0]), 0, -1)
        statuses = [e.split(b'"status": "')[1].split(b'"')[0] for e in events]
        assert statuses.count(b"started") == 1 and statuses.count(b"succeeded") == 1
    finally:
        await client.aclose()
