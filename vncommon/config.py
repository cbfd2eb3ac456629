"""Reading settings from the environment: typed helpers that name the variable when a value is bad.

Each service has one frozen settings dataclass built once at start with these helpers; nothing else
reads `os.environ`.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlparse

from vncommon.errors import ConfigError

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
SINGLE = "single"  # REDIS_MODE values
CLUSTER = "cluster"
REDIS_MODES = (SINGLE, CLUSTER)
# Protobuf framing and metadata on top of a payload in one gRPC message.
MESSAGE_HEADROOM_BYTES = 1024 * 1024
# Results add to what a request holds: its response may be this many times PAYLOAD_MAX_BYTES. GetResults
# (and a sync Submit) carry the whole response in one message, so the gRPC limits on that path follow.
RESPONSE_PAYLOAD_FACTOR = 4


def response_max_bytes(payload_max_bytes: int) -> int:
    """The largest response the mesh stores and returns, from PAYLOAD_MAX_BYTES."""
    return payload_max_bytes * RESPONSE_PAYLOAD_FACTOR
MIN_TOKEN_CHARS = 8
MAX_STREAM_SHARDS = 256


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


def env_list(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    raw = env.get(name, "")
    return tuple(part.strip() for part in raw.replace(";", ",").split(",") if part.strip())


def env_tokens(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    """Comma-separated bearer tokens; each at least MIN_TOKEN_CHARS long and without whitespace."""
    tokens = env_list(env, name)
    if any(len(token) < MIN_TOKEN_CHARS or any(ch.isspace() for ch in token) for token in tokens):
        raise ConfigError(f"{name} holds a token shorter than {MIN_TOKEN_CHARS} characters or with whitespace")
    return tokens


def env_client_token(env: Mapping[str, str]) -> str:
    """The token this process sends on its gRPC calls: VN_API_TOKEN, else the first of GRPC_API_TOKENS."""
    own = env_tokens(env, "VN_API_TOKEN")
    if len(own) > 1:
        raise ConfigError("VN_API_TOKEN holds more than one token; a client sends exactly one")
    return (own or env_tokens(env, "GRPC_API_TOKENS") or ("",))[0]


def env_redis_url(env: Mapping[str, str]) -> str:
    url = env_str(env, "REDIS_URL", DEFAULT_REDIS_URL)
    if urlparse(url).scheme not in ("redis", "rediss", "unix"):
        raise ConfigError(f"REDIS_URL has scheme {urlparse(url).scheme!r}; use redis://, rediss:// or unix://")
    return url


def env_redis_mode(env: Mapping[str, str], url: str) -> str:
    """REDIS_MODE: `single` (one Redis, the default) or `cluster` (a Redis Cluster reached from REDIS_URL)."""
    mode = env_str(env, "REDIS_MODE", SINGLE).lower()
    if mode not in REDIS_MODES:
        raise ConfigError(f"REDIS_MODE={mode!r} must be {' or '.join(REDIS_MODES)}")
    parsed = urlparse(url)
    if mode == CLUSTER and parsed.scheme == "unix":
        raise ConfigError("REDIS_MODE=cluster needs a redis:// or rediss:// REDIS_URL (a cluster has no unix sockets)")
    if mode == CLUSTER and parsed.path.strip("/") not in ("", "0"):
        raise ConfigError(f"REDIS_MODE=cluster needs database 0 in REDIS_URL (got /{parsed.path.strip('/')})")
    return mode


def env_shard_counts(env: Mapping[str, str], name: str) -> tuple[int, ...]:
    """Comma-separated shard counts, each between 1 and MAX_STREAM_SHARDS."""
    counts = []
    for part in env_list(env, name):
        if not part.isdigit() or not 1 <= int(part) <= MAX_STREAM_SHARDS:
            raise ConfigError(f"{name}={env.get(name)!r} must list shard counts between 1 and {MAX_STREAM_SHARDS}")
        counts.append(int(part))
    return tuple(counts)


def env_address(env: Mapping[str, str], name: str, default: str) -> str:
    value = env_str(env, name, default)
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ConfigError(f"{name}={value!r} must be host:port")
    return value


def is_loopback(host: str) -> bool:
    """True for a host only this machine can reach (127.0.0.0/8, ::1, localhost); False for 0.0.0.0 and names."""
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def listen_address(host: str, port: int) -> str:
    """host:port for a server to bind, with an IPv6 host in brackets ([::1]:50051)."""
    return f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"


@dataclass(frozen=True, slots=True)
class TlsSettings:
    """gRPC transport security. With a certificate and key, servers listen with TLS and clients present
    them; with a CA as well, both sides verify the peer against it (mutual TLS)."""

    cert_file: str = ""
    key_file: str = ""
    ca_file: str = ""

    @property
    def enabled(self) -> bool:
        return bool(self.cert_file or self.ca_file)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> TlsSettings:
        settings = cls(
            cert_file=env.get("GRPC_TLS_CERT_FILE", "").strip(),
            key_file=env.get("GRPC_TLS_KEY_FILE", "").strip(),
            ca_file=env.get("GRPC_TLS_CA_FILE", "").strip(),
        )
        if bool(settings.cert_file) != bool(settings.key_file):
            raise ConfigError("GRPC_TLS_CERT_FILE and GRPC_TLS_KEY_FILE must be set together")
        for name, path in (("GRPC_TLS_CERT_FILE", settings.cert_file), ("GRPC_TLS_KEY_FILE", settings.key_file),
                           ("GRPC_TLS_CA_FILE", settings.ca_file)):
            if path and not os.path.isfile(path):
                raise ConfigError(f"{name}={path!r} is not a readable file")
        return settings

    def read(self) -> tuple[bytes | None, bytes | None, bytes | None]:
        """(certificate chain, private key, CA certificates) as PEM bytes; None where not configured."""
        return tuple(_read(path) for path in (self.cert_file, self.key_file, self.ca_file))  # type: ignore[return-value]


def _read(path: str) -> bytes | None:
    if not path:
        return None
    with open(path, "rb") as handle:
        return handle.read()


@dataclass(frozen=True, slots=True)
class CommonSettings:
    """Settings every service reads (SPEC section 12)."""

    redis_url: str = DEFAULT_REDIS_URL
    redis_mode: str = SINGLE  # REDIS_MODE: single | cluster
    # STREAM_SHARDS: the ingest, dispatch and lifecycle streams are each split into this many streams.
    stream_shards: int = 1
    # STREAM_SHARDS_DRAIN: earlier shard counts whose streams consumers still read until they are empty.
    stream_shards_drain: tuple[int, ...] = ()
    payload_max_bytes: int = 10 * 1024 * 1024
    request_ttl_seconds: int = 86_400
    default_block_ms: int = 5_000
    lifecycle_block_ms: int = 1_000
    max_task_retries: int = 3
    log_level: str = "INFO"
    metrics_port: int | None = None  # METRICS_PORT: Prometheus /metrics over HTTP when set
    tls: TlsSettings = field(default_factory=TlsSettings)
    # GRPC_API_TOKENS: when set, the gRPC server of this service accepts only calls that carry one.
    grpc_api_tokens: tuple[str, ...] = field(default=(), repr=False)
    # What this service sends when it calls another one (VN_API_TOKEN, else the first of the above).
    grpc_client_token: str = field(default="", repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> CommonSettings:
        level = env_str(env, "LOG_LEVEL", "INFO").upper()
        if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ConfigError(f"LOG_LEVEL={level!r} must be DEBUG, INFO, WARNING or ERROR")
        redis_url = env_redis_url(env)
        return cls(
            redis_url=redis_url,
            redis_mode=env_redis_mode(env, redis_url),
            stream_shards=env_int(env, "STREAM_SHARDS", 1, minimum=1, maximum=MAX_STREAM_SHARDS),
            stream_shards_drain=env_shard_counts(env, "STREAM_SHARDS_DRAIN"),
            payload_max_bytes=env_int(env, "PAYLOAD_MAX_BYTES", 10 * 1024 * 1024, minimum=1024),
            request_ttl_seconds=env_int(env, "REQUEST_TTL_SECONDS", 86_400, minimum=1),
            default_block_ms=env_int(env, "DEFAULT_BLOCK_MS", 5_000, minimum=1),
            lifecycle_block_ms=env_int(env, "LIFECYCLE_BLOCK_MS", 1_000, minimum=1),
            max_task_retries=env_int(env, "MAX_TASK_RETRIES", 3, minimum=1, maximum=100),
            log_level=level,
            metrics_port=env_int(env, "METRICS_PORT", 0, maximum=65535) if env.get("METRICS_PORT") else None,
            tls=TlsSettings.from_env(env),
            grpc_api_tokens=env_tokens(env, "GRPC_API_TOKENS"),
            grpc_client_token=env_client_token(env),
        )

    @property
    def stream_layouts(self) -> tuple[int, ...]:
        """The shard counts whose streams consumers read: STREAM_SHARDS first, then STREAM_SHARDS_DRAIN."""
        return (self.stream_shards, *(n for n in self.stream_shards_drain if n != self.stream_shards))

    @property
    def grpc_max_message_bytes(self) -> int:
        """The largest message a service receives: a payload plus protobuf framing and metadata."""
        return self.payload_max_bytes + MESSAGE_HEADROOM_BYTES

    @property
    def response_max_bytes(self) -> int:
        """The largest response vnvs stores (results add to a request: RESPONSE_PAYLOAD_FACTOR x payload)."""
        return response_max_bytes(self.payload_max_bytes)

    @property
    def grpc_max_response_message_bytes(self) -> int:
        """The largest message vnapi sends and its clients receive: a whole response plus framing."""
        return self.response_max_bytes + MESSAGE_HEADROOM_BYTES
