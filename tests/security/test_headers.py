"""Header hygiene at the gateway, and trace ids checked on every path into the mesh (REST and gRPC).

Requests are written as raw bytes over a socket, since HTTP clients refuse to send bytes that are not
UTF-8; the gateway runs over a real vnapi, vnvs and vnas.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import grpc
import pytest
import redis.asyncio as redis

from tests.conftest import RedisServer
from tests.e2e.helpers import simple_request
from tests.security.auth_support import (
    GRPC_TOKENS,
    REFUSAL_BOUND_S,
    REST_TOKEN,
    RSS_BOUND_MIB,
    RunningMesh,
    raw_request,
    running_mesh,
    send_raw,
)
from tests.security.memory import peak_rss_mib
from vn.v1 import orchestrator_pb2, orchestrator_pb2_grpc, valuation_pb2, valuation_pb2_grpc
from vncommon import keys
from vncommon.grpcutil import create_channel, decode_error
from vncommon.trace import MAX_TRACE_ID_CHARS

pytestmark = pytest.mark.timeout(120)
AUTH = (b"Authorization", f"Bearer {REST_TOKEN}".encode())
XML = (b"Content-Type", b"application/xml")
VALID_TRACE_CHARS = "AZaz09._:-"


@pytest.fixture(scope="module")
def mesh(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningMesh]:
    with running_mesh(redis_server.url, tmp_path_factory.mktemp("headers-mesh"),
                      GRPC_API_TOKENS=",".join(GRPC_TOKENS), GATEWAY_API_TOKENS=REST_TOKEN) as running:
        yield running


def _post(*headers: tuple[bytes, bytes], sync: bool = False) -> bytes:
    return raw_request("POST", f"/valuation?sync={'Y' if sync else 'N'}", [XML, *headers], simple_request())


async def _still_serves(mesh: RunningMesh) -> None:
    answer = await send_raw(mesh.local.http_port, _post(AUTH, sync=True), timeout_s=30)
    assert answer.status == 200, answer.body
    assert peak_rss_mib(mesh.local.processes["gateway"].pid) < RSS_BOUND_MIB


BAD_BYTES = [
    pytest.param("POST", [(b"Idempotency-Key", b"key-\xff\xfe"), AUTH], 400, "Idempotency-Key", id="idempotency-key"),
    pytest.param("POST", [(b"X-Desk", b"rates-\xc3\x28"), AUTH], 400, "X-Desk", id="x-header-on-submit"),
    pytest.param("GET", [(b"X-Anything", b"\x80"), AUTH], 400, "X-Anything", id="x-header-on-status"),
    pytest.param("GET /healthz", [(b"X-Probe", b"\xfe")], 400, "X-Probe", id="x-header-on-a-public-route"),
    pytest.param("POST", [(b"X-Trace-Id", b"trace-\xff")], 400, "X-Trace-Id", id="trace-id"),
    pytest.param("POST", [(b"Authorization", b"Bearer \xff\xfe" + REST_TOKEN.encode())], 401, "Authorization",
                 id="authorization-on-submit"),
    pytest.param("GET /metrics", [(b"Authorization", b"Bearer tok\xe9n")], 401, "Authorization",
                 id="authorization-on-metrics"),
]


@pytest.mark.parametrize(("route", "headers", "status", "named"), BAD_BYTES)
async def test_a_header_that_is_not_utf8_gets_400_or_401_with_a_message_never_500(
    mesh: RunningMesh, route: str, headers: list[tuple[bytes, bytes]], status: int, named: str
) -> None:
    if route == "POST":
        request = raw_request("POST", "/valuation", [XML, *headers], simple_request())
    else:
        path = route.split(" ", 1)[1] if " " in route else "/valuation/some-id/status"
        request = raw_request("GET", path, headers)
    answer = await send_raw(mesh.local.http_port, request)
    assert answer.status == status, answer.body
    assert answer.seconds < REFUSAL_BOUND_S
    body = json.loads(answer.body)
    assert named in body["message"], body
    assert answer.headers["content-type"].startswith("application/json")
    assert 0 < len(answer.headers["x-trace-id"]) <= MAX_TRACE_ID_CHARS  # a fresh one, never the bytes sent
    if status == 401:
        assert answer.headers["www-authenticate"].startswith("Bearer")
    await _still_serves(mesh)


async def test_a_nul_byte_in_a_header_is_refused_by_the_parser_with_400_and_one_quiet_log_line(
    mesh: RunningMesh,
) -> None:
    answer = await send_raw(mesh.local.http_port, _post(AUTH, (b"X-Desk", b"a\x00b")))
    assert answer.status == 400 and answer.seconds < REFUSAL_BOUND_S
    await _still_serves(mesh)
    lines = [json.loads(line) for line in mesh.log("gateway").splitlines() if "Error handling request" in line]
    assert lines and all(line["level"] == "INFO" and "exc" not in line for line in lines), lines


async def test_utf8_beyond_ascii_in_an_x_header_is_kept_as_metadata(mesh: RunningMesh) -> None:
    answer = await send_raw(mesh.local.http_port, _post(AUTH, (b"X-Desk", "Zürich".encode())))
    assert answer.status == 202, answer.body
    assert json.loads(answer.body)["status"] == "accepted"


@pytest.mark.parametrize("sent", [
    pytest.param("t" * (MAX_TRACE_ID_CHARS + 1), id="too-long"),
    pytest.param("a b", id="space"),
    pytest.param("<script>", id="markup"),
    pytest.param("id;drop", id="semicolon"),
    pytest.param("trace-ü", id="utf8-outside-the-alphabet"),
])
async def test_an_invalid_x_trace_id_gets_400_naming_the_rule(mesh: RunningMesh, sent: str) -> None:
    for request in (_post(AUTH, (b"X-Trace-Id", sent.encode())),
                    raw_request("GET", "/valuation/x/status", [AUTH, (b"X-Trace-Id", sent.encode())])):
        answer = await send_raw(mesh.local.http_port, request)
        assert answer.status == 400 and answer.seconds < REFUSAL_BOUND_S, answer.body
        body = json.loads(answer.body)
        assert body["reason"] == "INVALID_ARGUMENT" and "X-Trace-Id" in body["message"]
        assert "A-Z a-z 0-9" in body["message"] and sent not in body["message"]
        assert answer.headers["x-trace-id"] != sent
    await _still_serves(mesh)


async def test_a_valid_x_trace_id_of_the_longest_length_is_carried_and_echoed(
    mesh: RunningMesh, redis_server: RedisServer
) -> None:
    sent = (VALID_TRACE_CHARS * MAX_TRACE_ID_CHARS)[:MAX_TRACE_ID_CHARS]
    answer = await send_raw(mesh.local.http_port, _post(AUTH, (b"X-Trace-Id", sent.encode())))
    assert answer.status == 202 and answer.headers["x-trace-id"] == sent
    request_id = json.loads(answer.body)["requestId"]
    client = redis.Redis.from_url(redis_server.url)  # not the flushing fixture: the mesh lives on this Redis
    try:
        assert await client.hget(keys.request_state_key(request_id), "traceId") == sent.encode()
    finally:
        await client.aclose()


# --- gRPC: Submit and Orchestrate check their trace ids too --------------------------------------------


async def _submit_error(mesh: RunningMesh, request: valuation_pb2.SubmitRequest) -> grpc.aio.AioRpcError | None:
    async with create_channel(mesh.local.vnapi_address, 12 * 1024 * 1024, token=GRPC_TOKENS[0]) as channel:
        try:
            await valuation_pb2_grpc.ValuationServiceStub(channel).Submit(request, timeout=10)
        except grpc.aio.AioRpcError as exc:
            return exc
    return None


@pytest.mark.parametrize("trace", ["x" * (MAX_TRACE_ID_CHARS + 1), "line\nbreak", "tab\there", "ünï"])
async def test_submit_refuses_an_invalid_trace_id_with_invalid_argument(mesh: RunningMesh, trace: str) -> None:
    for request in (valuation_pb2.SubmitRequest(xml=simple_request(), trace_id=trace),
                    valuation_pb2.SubmitRequest(xml=simple_request(), metadata={"X-Trace-Id": trace})):
        started = time.perf_counter()
        error = await _submit_error(mesh, request)
        assert error is not None and error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert time.perf_counter() - started < REFUSAL_BOUND_S
        decoded = decode_error(error)
        assert "trace_id" in decoded.message or "X-Trace-Id" in decoded.message, decoded.message
        assert decoded.metadata["limit"] == str(MAX_TRACE_ID_CHARS)
    assert await _submit_error(mesh, valuation_pb2.SubmitRequest(xml=simple_request(), trace_id="ok:trace-1")) is None


async def test_orchestrate_refuses_an_invalid_trace_id_with_invalid_argument(mesh: RunningMesh) -> None:
    async with create_channel(f"127.0.0.1:{mesh.local.vnvs_port}", 12 * 1024 * 1024,
                              token=GRPC_TOKENS[0]) as channel:
        stub = orchestrator_pb2_grpc.OrchestratorServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.Orchestrate(orchestrator_pb2.OrchestrateRequest(request_id="r", trace_id="bad trace"),
                                   timeout=5)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "trace_id" in decode_error(refused.value).message
        with pytest.raises(grpc.aio.AioRpcError) as unknown:  # a valid trace id reaches the request lookup
            await stub.Orchestrate(orchestrator_pb2.OrchestrateRequest(request_id="r", trace_id="t-1"), timeout=5)
        assert decode_error(unknown.value).reason == "REQUEST_NOT_FOUND"
