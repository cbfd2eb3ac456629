"""gRPC over TLS and mutual TLS: servers, channels and settings from the environment."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.common.tls_certs import Pki, make_pki
from vncommon.config import TlsSettings
from vncommon.errors import ConfigError
from vncommon.grpcutil import ServiceServer, create_channel

LIMIT = 4 * 1024 * 1024


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


async def _server(tls: TlsSettings) -> AsyncIterator[str]:
    server = ServiceServer(LIMIT, ["vn.v1.Test"])
    port = server.bind("127.0.0.1:0", tls)
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(0)


async def _healthy(address: str, tls: TlsSettings | None) -> bool:
    async with create_channel(address, LIMIT, tls) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=3)
        except grpc.aio.AioRpcError:
            return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


@pytest.fixture
async def tls_server(pki: Pki) -> AsyncIterator[str]:
    async for address in _server(TlsSettings.from_env(pki.env(mutual=False))):
        yield address


@pytest.fixture
async def mtls_server(pki: Pki) -> AsyncIterator[str]:
    async for address in _server(TlsSettings.from_env(pki.env(mutual=True))):
        yield address


async def test_a_tls_server_answers_a_client_that_trusts_its_ca_and_refuses_plaintext(
    tls_server: str, pki: Pki
) -> None:
    assert await _healthy(tls_server, TlsSettings(ca_file=str(pki.ca)))
    assert not await _healthy(tls_server, None)


async def test_a_mutual_tls_server_refuses_a_client_without_a_certificate(mtls_server: str, pki: Pki) -> None:
    assert await _healthy(mtls_server, TlsSettings.from_env(pki.env(mutual=True)))
    assert not await _healthy(mtls_server, TlsSettings(ca_file=str(pki.ca)))


def test_tls_settings_name_the_variable_that_is_wrong(pki: Pki, tmp_path: Path) -> None:
    assert not TlsSettings.from_env({}).enabled
    with pytest.raises(ConfigError, match="GRPC_TLS_CERT_FILE and GRPC_TLS_KEY_FILE"):
        TlsSettings.from_env({"GRPC_TLS_CERT_FILE": str(pki.cert)})
    with pytest.raises(ConfigError, match="GRPC_TLS_CA_FILE"):
        TlsSettings.from_env({"GRPC_TLS_CA_FILE": str(tmp_path / "missing.pem")})
