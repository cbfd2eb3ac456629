"""Every gRPC port demands a credential when GRPC_API_TOKENS is set: a bearer token, or a client certificate
verified under mutual TLS. Health and reflection stay open; the services, the gateway, `vn` and the SDK send
their token."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from tests.common.tls_certs import Pki, make_pki
from tests.conftest import ROOT, RedisServer
from tests.e2e.helpers import response_groups, simple_request
from tests.security.auth_support import (
    GRPC_TOKENS,
    REFUSAL_BOUND_S,
    REST_TOKEN,
    RSS_BOUND_MIB,
    TASK_XML,
    TASKS,
    VALUATION,
    RunningMesh,
    call,
    rpcs_of,
    running_mesh,
)
from tests.security.memory import peak_rss_mib
from vn.v1 import task_pb2, valuation_pb2
from vnclient import ClientSettings, Unauthenticated, ValuationClient
from vncommon.config import TlsSettings
from vncommon.grpcutil import ServiceServer, create_channel, decode_error
from vncommon.localmesh import free_port

pytestmark = pytest.mark.timeout(120)
LIMIT = 4 * 1024 * 1024
ECHO = "/vn.v1.Test/Echo"


@pytest.fixture(scope="module")
def mesh(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningMesh]:
    with running_mesh(redis_server.url, tmp_path_factory.mktemp("auth-mesh"),
                      GRPC_API_TOKENS=",".join(GRPC_TOKENS), GATEWAY_API_TOKENS=REST_TOKEN) as running:
        yield running


def _channel(address: str, token: str = "") -> grpc.aio.Channel:
    return create_channel(address, 12 * 1024 * 1024, token=token)


async def _sync_submit_succeeds(mesh: RunningMesh, token: str) -> None:
    settings = ClientSettings(address=mesh.local.vnapi_address, call_timeout_s=10, token=token)
    async with ValuationClient(settings) as client:
        reply = await client.submit(simple_request(tasks=2), sync=True, timeout=30)
    assert reply.status == valuation_pb2.REQUEST_STATUS_SUCCEEDED, reply


async def test_every_rpc_of_every_service_refuses_a_call_without_an_accepted_token(mesh: RunningMesh) -> None:
    checked = 0
    for service, address in mesh.services():
        for token, metadata, expected in (("", None, "GRPC_API_TOKENS"),
                                          ("not-a-configured-token", None, "not one of"),
                                          ("", (("authorization", "Basic dXNlcjpwdw=="),), "not one of"),
                                          ("", (("authorization", f"Bearer {GRPC_TOKENS[0]}x"),), "not one of")):
            async with _channel(address, token) as channel:
                for rpc in rpcs_of(service):
                    started = time.perf_counter()
                    error = await call(channel, rpc, metadata=metadata)
                    elapsed = time.perf_counter() - started
                    assert error is not None and error.code() == grpc.StatusCode.UNAUTHENTICATED, (rpc.path, error)
                    decoded = decode_error(error)
                    assert isinstance(decoded, Unauthenticated) and decoded.reason == "UNAUTHENTICATED"
                    assert expected in decoded.message, (rpc.path, token, metadata, decoded.message)
                    assert elapsed < REFUSAL_BOUND_S, (rpc.path, elapsed)
                    checked += 1
    # Four kinds of bad credential x Submit, GetStatus, GetResults, Watch, Cancel, Orchestrate, ExecuteTask.
    assert checked == 4 * 7
    await _sync_submit_succeeds(mesh, GRPC_TOKENS[0])
    for name, pid in mesh.local.pids().items():
        assert peak_rss_mib(pid) < RSS_BOUND_MIB, name


async def test_every_rpc_of_every_service_answers_a_call_with_any_configured_token(mesh: RunningMesh) -> None:
    for token in GRPC_TOKENS:
        for service, address in mesh.services():
            async with _channel(address, token) as channel:
                for rpc in rpcs_of(service):
                    error = await call(channel, rpc)  # an empty request: the servicer's own refusal at most
                    if error is not None:
                        assert error.code() != grpc.StatusCode.UNAUTHENTICATED, (rpc.path, error)
                        assert decode_error(error).reason in {"EMPTY_BODY", "INVALID_ARGUMENT", "REQUEST_NOT_FOUND"}
        async with _channel(mesh.addresses[TASKS.full_name], token) as channel:
            reply = await channel.unary_unary(f"/{TASKS.full_name}/ExecuteTask",
                                              request_serializer=task_pb2.ExecuteTaskRequest.SerializeToString,
                                              response_deserializer=task_pb2.ExecuteTaskResponse.FromString)(
                task_pb2.ExecuteTaskRequest(request_id="r", task_id="1", valuation_name="bond", attempt=1,
                                            task_xml=TASK_XML), timeout=20)
            assert reply.status == task_pb2.TASK_OUTCOME_STATUS_COMPLETED, reply.error
        await _sync_submit_succeeds(mesh, token)


async def test_health_and_reflection_answer_without_a_token(mesh: RunningMesh) -> None:
    for service, address in mesh.services():
        async with _channel(address) as channel:
            started = time.perf_counter()
            reply = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service.full_name), timeout=5)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
            stream = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(
                iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5)
            names = [s.name async for answer in stream for s in answer.list_services_response.service]
            assert service.full_name in names
            assert time.perf_counter() - started < REFUSAL_BOUND_S * 2


async def test_the_whole_mesh_runs_a_request_end_to_end_with_tokens_on_every_hop(mesh: RunningMesh) -> None:
    def refusals() -> int:
        return sum(mesh.log(name).count("call refused") for name in ("vnapi", "vnvs", "vnas0"))

    before = refusals()
    url = f"{mesh.local.http}/valuation?sync=Y"
    headers = {"Content-Type": "application/xml", "Authorization": f"Bearer {REST_TOKEN}"}
    async with aiohttp.ClientSession() as http:
        async with http.post(url, data=simple_request(groups=2, tasks=3), headers=headers) as response:
            assert response.status == 200, await response.text() + mesh.local.log_tail()
            assert [len(group) for group in response_groups(await response.read())] == [3, 3]
        async with http.post(url, data=simple_request(), headers={"Content-Type": "application/xml"}) as response:
            assert response.status == 401
    # gateway -> vnapi and vnapi -> vnvs carried the token: no service refused a call from another.
    assert refusals() == before


async def test_a_gateway_whose_token_vnapi_refuses_answers_500_and_its_log_says_what_to_fix(
    mesh: RunningMesh,
) -> None:
    port = free_port()
    mesh.local.start("gateway-wrong-token", "gateway", port, VN_API_TOKEN="a-token-vnapi-does-not-know")
    headers = {"Content-Type": "application/xml", "Authorization": f"Bearer {REST_TOKEN}"}
    async with aiohttp.ClientSession() as http, http.post(
        f"http://127.0.0.1:{port}/valuation", data=simple_request(), headers=headers
    ) as response:
        body = await response.json()
    assert response.status == 500 and body["reason"] == "INTERNAL", body
    assert "VN_API_TOKEN" in mesh.log("gateway-wrong-token")


def _vn(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vnclient.cli", *args], env={**env, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=60, check=False)


def test_vn_sends_VN_API_TOKEN_or_else_the_first_of_GRPC_API_TOKENS(mesh: RunningMesh, tmp_path: Path) -> None:
    request = tmp_path / "request.xml"
    request.write_bytes(simple_request())
    args = ["submit", str(request), "--sync", "--address", mesh.local.vnapi_address]
    base = {k: v for k, v in mesh.local.env.items() if k != "GRPC_API_TOKENS"}
    refused = _vn(args, base)
    assert refused.returncode == 3 and "vn: UNAUTHENTICATED:" in refused.stderr, refused.stderr
    assert "VN_API_TOKEN" in refused.stderr
    for env in ({**base, "VN_API_TOKEN": GRPC_TOKENS[1]}, {**base, "GRPC_API_TOKENS": ",".join(GRPC_TOKENS)}):
        done = _vn(args, env)
        assert done.returncode == 0, done.stderr
        assert response_groups(done.stdout.encode()), done.stdout


# --- mutual TLS: a verified client certificate stands in for a token -----------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


async def _echo(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    return request


@pytest.fixture
async def tls_servers(pki: Pki) -> AsyncIterator[dict[str, str]]:
    """Two servers with tokens: one with mutual TLS, one with server-side TLS only."""
    servers, addresses = [], {}
    for name, mutual in (("mutual", True), ("server-only", False)):
        server = ServiceServer(LIMIT, ["vn.v1.Test"], tokens=GRPC_TOKENS)
        server.server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(
            "vn.v1.Test", {"Echo": grpc.unary_unary_rpc_method_handler(_echo)})])
        port = server.bind("127.0.0.1:0", TlsSettings.from_env(pki.env(mutual=mutual)))
        await server.start()
        servers.append(server)
        addresses[name] = f"127.0.0.1:{port}"
    yield addresses
    for server in servers:
        await server.stop(0)


async def _echo_code(address: str, tls: TlsSettings, token: str = "") -> grpc.StatusCode:
    async with create_channel(address, LIMIT, tls, token) as channel:
        started = time.perf_counter()
        try:
            assert await channel.unary_unary(ECHO)(b"ping", timeout=5) == b"ping"
        except grpc.aio.AioRpcError as exc:
            return exc.code()
        finally:
            assert time.perf_counter() - started < REFUSAL_BOUND_S * 3
    return grpc.StatusCode.OK


async def test_a_client_certificate_verified_by_mutual_tls_takes_the_place_of_a_token(
    tls_servers: dict[str, str], pki: Pki
) -> None:
    with_certificate = TlsSettings.from_env(pki.env(mutual=True))
    ca_only = TlsSettings(ca_file=str(pki.ca))
    assert await _echo_code(tls_servers["mutual"], with_certificate) == grpc.StatusCode.OK
    assert await _echo_code(tls_servers["server-only"], ca_only) == grpc.StatusCode.UNAUTHENTICATED
    assert await _echo_code(tls_servers["server-only"], ca_only, GRPC_TOKENS[1]) == grpc.StatusCode.OK
    assert await _echo_code(tls_servers["mutual"], with_certificate) == grpc.StatusCode.OK  # still serving


# --- the warning a service process prints at start ----------------------------------------------------


async def test_a_service_process_bound_to_all_interfaces_without_tokens_prints_the_warning_at_start(
    mesh: RunningMesh,
) -> None:
    port = free_port()
    process = mesh.local.start("vnas-open", "vnas", port, GRPC_HOST="0.0.0.0", GRPC_API_TOKENS="")
    assert process.poll() is None
    assert "without authentication" in mesh.log("vnas-open")
    assert "without authentication" not in mesh.log("vnas0")  # the same service with tokens is quiet






async def test_a_refused_call_leaves_the_service_serving_others_at_once(mesh: RunningMesh) -> None:
    async with _channel(mesh.local.vnapi_address) as anonymous:
        refusals = [call(anonymous, rpc) for rpc in rpcs_of(VALUATION) for _ in range(25)]
        started = time.perf_counter()
        errors = await asyncio.gather(*refusals)
        elapsed = time.perf_counter() - started
    assert all(e is not None and e.code() == grpc.StatusCode.UNAUTHENTICATED for e in errors)
    assert elapsed < REFUSAL_BOUND_S * 5, elapsed  # 100 refusals
    await _sync_submit_succeeds(mesh, GRPC_TOKENS[0])
