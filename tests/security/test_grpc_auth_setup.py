"""How gRPC authentication is set up: the start-up warning for an open port, token settings checked at
start and kept out of reprs, and a comparison that looks at every configured token."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from gateway.server import GatewayService
from gateway.settings import GatewaySettings
from tests.common.tls_certs import Pki, make_pki
from tests.security.auth_support import GRPC_TOKENS, REST_TOKEN
from vnclient import ClientSettings
from vncommon import auth
from vncommon.config import CommonSettings, TlsSettings
from vncommon.errors import ConfigError
from vncommon.grpcutil import ServiceServer

LIMIT = 4 * 1024 * 1024


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def test_a_grpc_server_bound_beyond_loopback_without_tokens_or_mutual_tls_warns(
    caplog: pytest.LogCaptureFixture, pki: Pki
) -> None:
    caplog.set_level(logging.WARNING, logger="vncommon.grpcutil")
    for tokens, tls, address, warns in (((), None, "0.0.0.0:0", True), ((), None, "[::]:0", True),
                                        (GRPC_TOKENS, None, "0.0.0.0:0", False),
                                        ((), TlsSettings.from_env(pki.env(mutual=True)), "0.0.0.0:0", False),
                                        ((), TlsSettings.from_env(pki.env(mutual=False)), "0.0.0.0:0", True),
                                        ((), None, "127.0.0.1:0", False), ((), None, "[::1]:0", False)):
        caplog.clear()
        ServiceServer(LIMIT, ["vn.v1.Test"], tokens=tokens).bind(address, tls)
        warned = [r for r in caplog.records if "without authentication" in r.getMessage()]
        assert bool(warned) == warns, (tokens, tls, address)
        if warns:
            assert "GRPC_API_TOKENS" in warned[0].getMessage()


async def test_a_gateway_bound_beyond_loopback_without_tokens_warns(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="gateway.server")
    for tokens, warns in (((), True), ((REST_TOKEN,), False)):
        caplog.clear()
        service = GatewayService(GatewaySettings(http_host="0.0.0.0", http_port=0, api_tokens=tokens))
        try:
            await service.bind()
        finally:
            await service.close()
        assert any("GATEWAY_API_TOKENS" in r.getMessage() for r in caplog.records) == warns


def test_tokens_are_validated_at_start_and_never_shown_in_settings() -> None:
    for bad in ("short", f"{GRPC_TOKENS[0]},has space in it"):
        with pytest.raises(ConfigError, match="GRPC_API_TOKENS"):
            CommonSettings.from_env({"GRPC_API_TOKENS": bad})
    with pytest.raises(ConfigError, match="VN_API_TOKEN"):
        CommonSettings.from_env({"VN_API_TOKEN": f"{GRPC_TOKENS[0]},{GRPC_TOKENS[1]}"})
    settings = CommonSettings.from_env({"GRPC_API_TOKENS": ",".join(GRPC_TOKENS)})
    assert settings.grpc_api_tokens == GRPC_TOKENS and settings.grpc_client_token == GRPC_TOKENS[0]
    assert CommonSettings.from_env({"GRPC_API_TOKENS": GRPC_TOKENS[0], "VN_API_TOKEN": GRPC_TOKENS[1]}
                                   ).grpc_client_token == GRPC_TOKENS[1]
    assert GRPC_TOKENS[0] not in repr(settings)
    assert ClientSettings.from_env({"VN_API_TOKEN": GRPC_TOKENS[1]}).token == GRPC_TOKENS[1]


def test_the_token_check_compares_every_configured_token(monkeypatch: pytest.MonkeyPatch) -> None:
    compared: list[Any] = []
    real = auth.hmac.compare_digest

    def counting(a: Any, b: Any) -> bool:
        compared.append(b)
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", counting)
    tokens = auth.TokenSet([*GRPC_TOKENS, "a-third-token-0000"])
    assert tokens.accepts(GRPC_TOKENS[0])  # a match on the first token still compares all three
    assert len(compared) == 3
    assert not tokens.accepts("") and not tokens.accepts(GRPC_TOKENS[0][:-1])
