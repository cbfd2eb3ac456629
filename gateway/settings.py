"""Gateway settings, read once from the environment at start (SPEC section 12)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from vnclient import ClientSettings
from vncommon.balancing import env_target
from vncommon.config import (
    DEFAULT_REDIS_URL,
    CommonSettings,
    TlsSettings,
    env_int,
    env_str,
    env_tokens,
)

DEFAULT_PAYLOAD_MAX_BYTES = 10 * 1024 * 1024
# What aiohttp may buffer on top of the payload limit; our own streaming check decides on 413.
BODY_HEADROOM_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True)
class GatewaySettings:
    """Everything the REST gateway reads from the environment. Tests build it directly."""

    http_host: str = "127.0.0.1"
    http_port: int = 8080
    vnapi_address: str = "127.0.0.1:50051"
    redis_url: str = DEFAULT_REDIS_URL
    payload_max_bytes: int = DEFAULT_PAYLOAD_MAX_BYTES
    sync_wait_timeout_ms: int = 120_000
    call_timeout_ms: int = 10_000
    health_timeout_ms: int = 2_000
    shutdown_grace_ms: int = 30_000
    api_tokens: tuple[str, ...] = field(default=(), repr=False)
    log_level: str = "INFO"
    tls: TlsSettings = field(default_factory=TlsSettings)  # for the gRPC channel to vnapi
    grpc_token: str = field(default="", repr=False)  # sent to vnapi when it has GRPC_API_TOKENS
    sse_heartbeat_ms: int = 15_000  # comment lines on an idle event stream
    sse_progress_ms: int = 1_000  # how often a running request's progress is looked at for its stream

    @property
    def call_timeout_s(self) -> float:
        return self.call_timeout_ms / 1000

    @property
    def sync_deadline_s(self) -> float:
        """gRPC deadline of a sync Submit: vnapi's wait plus one ordinary call, so a pending answer can arrive."""
        return (self.sync_wait_timeout_ms + self.call_timeout_ms) / 1000

    @property
    def client_max_size(self) -> int:
        return self.payload_max_bytes + BODY_HEADROOM_BYTES

    def client_settings(self) -> ClientSettings:
        return ClientSettings(
            address=self.vnapi_address,
            payload_max_bytes=self.payload_max_bytes,
            call_timeout_s=self.call_timeout_s,
            sync_timeout_s=self.sync_deadline_s,
            tls=self.tls,
            token=self.grpc_token,
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> GatewaySettings:
        """Read and validate; a bad value raises ConfigError naming the variable."""
        common = CommonSettings.from_env(env)
        return cls(
            http_host=env_str(env, "HTTP_HOST", "127.0.0.1"),
            http_port=env_int(env, "HTTP_PORT", 8080, minimum=0, maximum=65535),
            vnapi_address=env_target(env, "VNAPI_ADDRESS", "127.0.0.1:50051"),
            redis_url=common.redis_url,
            payload_max_bytes=common.payload_max_bytes,
            sync_wait_timeout_ms=env_int(env, "SYNC_WAIT_TIMEOUT_MS", 120_000, minimum=1),
            call_timeout_ms=env_int(env, "GATEWAY_CALL_TIMEOUT_MS", 10_000, minimum=1),
            health_timeout_ms=env_int(env, "GATEWAY_HEALTH_TIMEOUT_MS", 2_000, minimum=1),
            shutdown_grace_ms=env_int(env, "GATEWAY_SHUTDOWN_GRACE_MS", 30_000, minimum=0),
            api_tokens=env_tokens(env, "GATEWAY_API_TOKENS"),
            log_level=common.log_level,
            tls=common.tls,
            grpc_token=common.grpc_client_token,
            sse_heartbeat_ms=env_int(env, "GATEWAY_SSE_HEARTBEAT_MS", 15_000, minimum=100),
            sse_progress_ms=env_int(env, "GATEWAY_SSE_PROGRESS_MS", 1_000, minimum=50),
        )
