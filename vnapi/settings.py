"""vnapi settings: read once from the environment at start, then passed down (SPEC section 12)."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field

from vncommon.balancing import env_target
from vncommon.config import CommonSettings, env_int, env_str, listen_address
from vncommon.errors import ConfigError

DEFAULT_GRPC_HOST = "127.0.0.1"
DEFAULT_GRPC_PORT = 50051
DEFAULT_VNVS_ADDRESS = "127.0.0.1:50052"
DEFAULT_SYNC_WAIT_TIMEOUT_MS = 120_000
DEFAULT_CLAIM_IDLE_MS = 30_000
DEFAULT_INGEST_CONCURRENCY = 32
DEFAULT_SHUTDOWN_GRACE_MS = 10_000
DEFAULT_ORCHESTRATE_TIMEOUT_MS = 10_000
DEFAULT_REDIS_MAX_CONNECTIONS = 128
# Threads checking and hashing large submissions: one per core, a few at most.
DEFAULT_CHECK_THREADS = max(1, min(4, os.cpu_count() or 1))
MAX_CONSUMER_NAME = 200


def default_consumer_name() -> str:
    """Unique per process, so entries of a dead process are recognisably someone else's."""
    return f"vnapi-{socket.gethostname()}-{os.getpid()}"


@dataclass(frozen=True, slots=True)
class VnapiSettings:
    """Everything vnapi reads from the environment."""

    common: CommonSettings = field(default_factory=CommonSettings)
    grpc_host: str = DEFAULT_GRPC_HOST
    grpc_port: int = DEFAULT_GRPC_PORT
    vnvs_address: str = DEFAULT_VNVS_ADDRESS
    sync_wait_timeout_ms: int = DEFAULT_SYNC_WAIT_TIMEOUT_MS
    ingest_claim_idle_ms: int = DEFAULT_CLAIM_IDLE_MS
    ingest_concurrency: int = DEFAULT_INGEST_CONCURRENCY
    shutdown_grace_ms: int = DEFAULT_SHUTDOWN_GRACE_MS
    orchestrate_timeout_ms: int = DEFAULT_ORCHESTRATE_TIMEOUT_MS
    consumer_name: str = field(default_factory=default_consumer_name)
    redis_max_connections: int = DEFAULT_REDIS_MAX_CONNECTIONS
    check_threads: int = DEFAULT_CHECK_THREADS

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> VnapiSettings:
        """Validate every variable; a bad one raises ConfigError naming it."""
        return cls(
            common=CommonSettings.from_env(env),
            grpc_host=env_str(env, "GRPC_HOST", DEFAULT_GRPC_HOST),
            grpc_port=env_int(env, "GRPC_PORT", DEFAULT_GRPC_PORT, minimum=0, maximum=65_535),
            vnvs_address=env_target(env, "VNVS_ADDRESS", DEFAULT_VNVS_ADDRESS),
            sync_wait_timeout_ms=env_int(env, "SYNC_WAIT_TIMEOUT_MS", DEFAULT_SYNC_WAIT_TIMEOUT_MS, minimum=1),
            ingest_claim_idle_ms=env_int(env, "VNAPI_INGEST_CLAIM_IDLE_MS", DEFAULT_CLAIM_IDLE_MS, minimum=100),
            ingest_concurrency=env_int(
                env, "VNAPI_INGEST_CONCURRENCY", DEFAULT_INGEST_CONCURRENCY, minimum=1, maximum=10_000
            ),
            shutdown_grace_ms=env_int(env, "VNAPI_SHUTDOWN_GRACE_MS", DEFAULT_SHUTDOWN_GRACE_MS, minimum=0),
            orchestrate_timeout_ms=env_int(
                env, "VNAPI_ORCHESTRATE_TIMEOUT_MS", DEFAULT_ORCHESTRATE_TIMEOUT_MS, minimum=1
            ),
            consumer_name=_consumer_name(env),
            redis_max_connections=env_int(
                env, "VNAPI_REDIS_MAX_CONNECTIONS", DEFAULT_REDIS_MAX_CONNECTIONS, minimum=4, maximum=10_000
            ),
            check_threads=env_int(env, "VNAPI_CHECK_THREADS", DEFAULT_CHECK_THREADS, minimum=1, maximum=64),
        )

    @property
    def listen_address(self) -> str:
        return listen_address(self.grpc_host, self.grpc_port)


def _consumer_name(env: Mapping[str, str]) -> str:
    name = env_str(env, "VNAPI_CONSUMER_NAME", default_consumer_name())
    if len(name) > MAX_CONSUMER_NAME or any(ch.isspace() for ch in name):
        raise ConfigError(f"VNAPI_CONSUMER_NAME={name!r} must be at most {MAX_CONSUMER_NAME} characters, no spaces")
    return name
