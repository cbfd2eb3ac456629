"""Reading settings from the environment: typed helpers that name the variable when a value is bad.

Each service has one frozen settings dataclass built once at start with these helpers; nothing else
reads `os.environ`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlparse

from vncommon.errors import ConfigError

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


def env_str(env: Mapping[str, str], name: str, default: str | None = None) -> str:
    value = env.get(name, "").strip()
    if value:
        return value
    if default is None:
        raise ConfigError(f"{name} must be set")
    return default


def env_int(env: Mapping[str, str], name: str, default: int, minimum: int = 0, maximum: int | None = None) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not an integer") from None
    if value < minimum or (maximum is not None and value > maximum):
        upper = f" and at most {maximum}" if maximum is not None else ""
        raise ConfigError(f"{name}={raw!r} must be at least {minimum}{upper}")
    return value


def env_bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "y", "on"):
        return True
    if raw in ("0", "false", "no", "n", "off"):
        return False
    raise ConfigError(f"{name}={raw!r} is not a boolean (use true or false)")


def env_list(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    raw = env.get(name, "")
    return tuple(part.strip() for part in raw.replace(";", ",").split(",") if part.strip())


def env_redis_url(env: Mapping[str, str]) -> str:
    url = env_str(env, "REDIS_URL", DEFAULT_REDIS_URL)
    if urlparse(url).scheme not in ("redis", "rediss", "unix"):
        raise ConfigError(f"REDIS_URL has scheme {urlparse(url).scheme!r}; use redis://, rediss:// or unix://")
    return url


def env_address(env: Mapping[str, str], name: str, default: str) -> str:
    value = env_str(env, name, default)
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ConfigError(f"{name}={value!r} must be host:port")
    return value


@dataclass(frozen=True, slots=True)
class CommonSettings:
    """Settings every service reads (SPEC section 12)."""

    redis_url: str = DEFAULT_REDIS_URL
    payload_max_bytes: int = 10 * 1024 * 1024
    request_ttl_seconds: int = 86_400
    default_block_ms: int = 5_000
    lifecycle_block_ms: int = 1_000
    max_task_retries: int = 3
    log_level: str = "INFO"
    metrics_port: int | None = None  # METRICS_PORT: Prometheus /metrics over HTTP when set

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> CommonSettings:
        level = env_str(env, "LOG_LEVEL", "INFO").upper()
        if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ConfigError(f"LOG_LEVEL={level!r} must be DEBUG, INFO, WARNING or ERROR")
        return cls(
            redis_url=env_redis_url(env),
            payload_max_bytes=env_int(env, "PAYLOAD_MAX_BYTES", 10 * 1024 * 1024, minimum=1024),
            request_ttl_seconds=env_int(env, "REQUEST_TTL_SECONDS", 86_400, minimum=1),
            default_block_ms=env_int(env, "DEFAULT_BLOCK_MS", 5_000, minimum=1),
            lifecycle_block_ms=env_int(env, "LIFECYCLE_BLOCK_MS", 1_000, minimum=1),
            max_task_retries=env_int(env, "MAX_TASK_RETRIES", 3, minimum=1, maximum=100),
            log_level=level,
            metrics_port=env_int(env, "METRICS_PORT", 0, maximum=65535) if env.get("METRICS_PORT") else None,
        )

    @property
    def grpc_max_message_bytes(self) -> int:
        # Room for the payload plus protobuf framing and metadata.
        return self.payload_max_bytes + 1024 * 1024
