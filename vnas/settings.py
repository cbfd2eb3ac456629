"""vnas settings: one frozen dataclass read from the environment once at start (SPEC section 12)."""

from __future__ import annotations

import os
import re
import shutil
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from vnas.scriptenv import parse_allowlist
from vncommon.config import CommonSettings, env_int, env_str, listen_address
from vncommon.errors import ConfigError

DEFAULT_GRPC_PORT = 50053
DEFAULT_GRPC_HOST = "127.0.0.1"
DEFAULT_TASK_TIMEOUT_MS = 300_000
DEFAULT_CLAIM_IDLE_MS = 30_000
DEFAULT_CONCURRENCY = 4
# The most dispatch entries a worker queues beyond its free slots (only while its tasks are short).
DEFAULT_PREFETCH = 32
DEFAULT_SHUTDOWN_GRACE_MS = 10_000
# PAYLOAD_MAX_BYTES's default: a stored result must fit in a gRPC message again (ExecuteTask, GetResults).
DEFAULT_MAX_RESULT_BYTES = 10 * 1024 * 1024
MAX_CONCURRENCY = 1024
# The keep-fresh task renews entries several times per idle window, so claims need some room.
MIN_CLAIM_IDLE_MS = 50

SCRIPT_MODES = ("oneshot", "persistent")
DEFAULT_WARM_MAX_TASKS = 10_000
MAX_EXECUTOR_PROCESSES = 256

EXECUTOR_PREFIX = "python:"
_EXECUTOR_TARGET = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*$")
# A cancelled request's running scripts are gone within this (plus a kill) of the cancel.
DEFAULT_CANCEL_CHECK_MS = 250
_CONSUMER_NAME = re.compile(r"^[\w.@:-]{1,200}$")


def default_consumer_name() -> str:
    """hostname-pid: unique per live process, so a restarted worker never inherits a dead one's entries."""
    return f"{socket.gethostname()}-{os.getpid()}"


@dataclass(frozen=True, slots=True)
class VnasSettings:
    """Everything a vnas process needs; tests build it directly."""

    common: CommonSettings = field(default_factory=CommonSettings)
    grpc_host: str = DEFAULT_GRPC_HOST
    grpc_port: int = DEFAULT_GRPC_PORT
    script: str | None = None
    executor: str | None = None
    task_timeout_ms: int = DEFAULT_TASK_TIMEOUT_MS
    claim_idle_ms: int = DEFAULT_CLAIM_IDLE_MS
    concurrency: int = DEFAULT_CONCURRENCY
    prefetch: int = DEFAULT_PREFETCH
    consumer_name: str = field(default_factory=default_consumer_name)
    shutdown_grace_ms: int = DEFAULT_SHUTDOWN_GRACE_MS
    metrics_port: int | None = None
    max_result_bytes: int | None = None  # VNAS_MAX_RESULT_BYTES; None: PAYLOAD_MAX_BYTES
    script_env: tuple[str, ...] = ()  # VNAS_SCRIPT_ENV: worker variables the script may see
    cancel_check_ms: int = DEFAULT_CANCEL_CHECK_MS  # how often running tasks' requests are checked for cancel
    script_mode: str = "oneshot"  # VNAS_SCRIPT_MODE: a process per task, or persistent framed-v1 processes
    executor_processes: int = 0  # VNAS_EXECUTOR_PROCESSES: 0 runs VNAS_EXECUTOR in threads
    warm_max_tasks: int = DEFAULT_WARM_MAX_TASKS  # VNAS_WARM_MAX_TASKS: a warm process is retired after these
    warm_max_rss_mb: int = 0  # VNAS_WARM_MAX_RSS_MB: ... or once it is this big (0: not checked)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> VnasSettings:
        script, executor = _executor_choice(env)
        warm = _warm_choice(env, script, executor)
        common = CommonSettings.from_env(env)
        return cls(
            common=common,
            grpc_host=env_str(env, "GRPC_HOST", DEFAULT_GRPC_HOST),
            grpc_port=env_int(env, "GRPC_PORT", DEFAULT_GRPC_PORT, minimum=0, maximum=65535),
            script=script,
            executor=executor,
            task_timeout_ms=env_int(env, "VNAS_TASK_TIMEOUT_MS", DEFAULT_TASK_TIMEOUT_MS, minimum=1),
            claim_idle_ms=env_int(env, "VNAS_CLAIM_IDLE_MS", DEFAULT_CLAIM_IDLE_MS, minimum=MIN_CLAIM_IDLE_MS),
            concurrency=env_int(env, "VNAS_CONCURRENCY", DEFAULT_CONCURRENCY, minimum=1, maximum=MAX_CONCURRENCY),
            prefetch=env_int(env, "VNAS_PREFETCH", DEFAULT_PREFETCH, minimum=0, maximum=MAX_CONCURRENCY),
            consumer_name=_consumer_name(env),
            shutdown_grace_ms=env_int(env, "VNAS_SHUTDOWN_GRACE_MS", DEFAULT_SHUTDOWN_GRACE_MS, minimum=0),
            metrics_port=_metrics_port(env),
            max_result_bytes=_max_result_bytes(env, common.payload_max_bytes),
            script_env=parse_allowlist(env.get("VNAS_SCRIPT_ENV", "")),
            cancel_check_ms=env_int(env, "VNAS_CANCEL_CHECK_MS", DEFAULT_CANCEL_CHECK_MS, minimum=10,
                                    maximum=60_000),
            **warm,
        )

    @property
    def warm(self) -> bool:
        """Tasks run in long-lived processes (persistent scripts or the process pool)."""
        return self.script_mode == "persistent" or self.executor_processes > 0

    @property
    def redis_url(self) -> str:
        return self.common.redis_url

    @property
    def grpc_address(self) -> str:
        return listen_address(self.grpc_host, self.grpc_port)

    @property
    def task_timeout_s(self) -> float:
        return self.task_timeout_ms / 1000

    @property
    def shutdown_grace_s(self) -> float:
        return self.shutdown_grace_ms / 1000

    @property
    def result_limit(self) -> int:
        """Bytes one task result may have: VNAS_MAX_RESULT_BYTES, by default PAYLOAD_MAX_BYTES."""
        return self.max_result_bytes or self.common.payload_max_bytes


def _executor_choice(env: Mapping[str, str]) -> tuple[str | None, str | None]:
    """Exactly one of VNAS_SCRIPT and VNAS_EXECUTOR, each checked for shape (and the script for existence)."""
    script = env.get("VNAS_SCRIPT", "").strip()
    executor = env.get("VNAS_EXECUTOR", "").strip()
    if bool(script) == bool(executor):
        which = "both are set" if script else "neither is set"
        raise ConfigError(f"set exactly one of VNAS_SCRIPT (an executable) or VNAS_EXECUTOR "
                          f"(python:package.module:function); {which}")
    if script:
        return resolve_script(script), None
    return None, check_executor_spec(executor)


def _warm_choice(env: Mapping[str, str], script: str | None, executor: str | None) -> dict[str, Any]:
    """VNAS_SCRIPT_MODE belongs to VNAS_SCRIPT, VNAS_EXECUTOR_PROCESSES to VNAS_EXECUTOR, VNAS_WARM_* to either."""
    mode = env.get("VNAS_SCRIPT_MODE", "").strip()
    if mode and mode not in SCRIPT_MODES:
        raise ConfigError(f"VNAS_SCRIPT_MODE={mode!r} must be one of {', '.join(SCRIPT_MODES)}")
    if mode and executor:
        raise ConfigError(f"VNAS_SCRIPT_MODE={mode} applies to VNAS_SCRIPT, but VNAS_EXECUTOR is set; for warm "
                          f"in-process pricers set VNAS_EXECUTOR_PROCESSES instead")
    processes = env_int(env, "VNAS_EXECUTOR_PROCESSES", 0, minimum=0, maximum=MAX_EXECUTOR_PROCESSES)
    if processes and script:
        raise ConfigError(f"VNAS_EXECUTOR_PROCESSES={processes} applies to VNAS_EXECUTOR, but VNAS_SCRIPT is set; "
                          f"for warm scripts set VNAS_SCRIPT_MODE=persistent instead")
    warm = mode == "persistent" or processes > 0
    for name in ("VNAS_WARM_MAX_TASKS", "VNAS_WARM_MAX_RSS_MB"):
        if env.get(name, "").strip() and not warm:
            raise ConfigError(f"{name} applies only to warm processes; set VNAS_SCRIPT_MODE=persistent "
                              f"(with VNAS_SCRIPT) or VNAS_EXECUTOR_PROCESSES (with VNAS_EXECUTOR)")
    return {
        "script_mode": mode or SCRIPT_MODES[0],
        "executor_processes": processes,
        "warm_max_tasks": env_int(env, "VNAS_WARM_MAX_TASKS", DEFAULT_WARM_MAX_TASKS, minimum=1),
        "warm_max_rss_mb": env_int(env, "VNAS_WARM_MAX_RSS_MB", 0, minimum=0),
    }


def resolve_script(value: str) -> str:
    """An absolute path to an executable file; a bare name is looked up on PATH."""
    found = value if os.sep in value else shutil.which(value)
    if found is None:
        raise ConfigError(f"VNAS_SCRIPT={value!r} is not found on PATH")
    path = os.path.abspath(found)
    if not os.path.isfile(path):
        raise ConfigError(f"VNAS_SCRIPT={value!r} is not a file")
    if not os.access(path, os.X_OK):
        raise ConfigError(f"VNAS_SCRIPT={value!r} is not executable (chmod +x it)")
    return path


def check_executor_spec(value: str) -> str:
    """`python:package.module:function`, returned without its prefix."""
    target = value.removeprefix(EXECUTOR_PREFIX)
    if not value.startswith(EXECUTOR_PREFIX) or not _EXECUTOR_TARGET.match(target):
        raise ConfigError(f"VNAS_EXECUTOR={value!r} must look like python:package.module:function")
    return target


def _consumer_name(env: Mapping[str, str]) -> str:
    value = env.get("VNAS_CONSUMER_NAME", "").strip()
    if not value:
        return default_consumer_name()
    if not _CONSUMER_NAME.match(value):
        raise ConfigError(f"VNAS_CONSUMER_NAME={value!r} may hold only letters, digits and . @ : _ - "
                          f"(at most 200 characters)")
    return value


def _metrics_port(env: Mapping[str, str]) -> int | None:
    if not env.get("VNAS_METRICS_PORT", "").strip():
        return None
    return env_int(env, "VNAS_METRICS_PORT", 0, minimum=0, maximum=65535)


def _max_result_bytes(env: Mapping[str, str], payload_max_bytes: int) -> int:
    """At most PAYLOAD_MAX_BYTES: a larger result could be stored but never fetched through gRPC."""
    value = env_int(env, "VNAS_MAX_RESULT_BYTES", payload_max_bytes, minimum=1)
    if value > payload_max_bytes:
        raise ConfigError(f"VNAS_MAX_RESULT_BYTES={value} is more than PAYLOAD_MAX_BYTES={payload_max_bytes}; "
                          f"a result that large could be stored but never fetched")
    return value
