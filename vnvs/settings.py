"""vnvs settings, read once from the environment at start."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field

from vncommon.config import CommonSettings, env_int, env_str
from vnvs.admission import default_inflight_bytes, memory_limit
from vnvs.hydration import HydrationSettings

# Settings built by hand (tests) admit by count only unless they say otherwise.
UNLIMITED_INFLIGHT_BYTES = 1 << 62


@dataclass(frozen=True, slots=True)
class VnvsSettings:
    common: CommonSettings = field(default_factory=CommonSettings)
    hydration: HydrationSettings = field(default_factory=HydrationSettings)
    grpc_host: str = "127.0.0.1"
    grpc_port: int = 50052
    instance_id: str = "vnvs"
    lease_ms: int = 10_000
    task_wait_timeout_ms: int = 600_000
    retry_base_ms: int = 200
    retry_cap_ms: int = 10_000
    max_concurrent_requests: int = 256
    recovery_interval_ms: int = 2_000
    shutdown_grace_ms: int = 10_000
    max_run_starts: int = 5
    loop_stall_ms: int = 1_000
    max_inflight_bytes: int = UNLIMITED_INFLIGHT_BYTES
    inline_task_bytes: int = 8_192  # task XML up to this size travels in its dispatch entry
    request_window: int = 512  # a request's tasks in the dispatch stream or running at once (fairness)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> VnvsSettings:
        common = CommonSettings.from_env(env)
        hydration = HydrationSettings.from_env(env)
        return cls(
            common=common,
            hydration=hydration,
            grpc_host=env_str(env, "GRPC_HOST", "127.0.0.1"),
            grpc_port=env_int(env, "GRPC_PORT", 50052, maximum=65535),
            instance_id=env_str(env, "VNVS_INSTANCE_ID", f"{socket.gethostname()}-{os.getpid()}"),
            lease_ms=env_int(env, "VNVS_LEASE_MS", 10_000, minimum=300),
            task_wait_timeout_ms=env_int(env, "TASK_WAIT_TIMEOUT_MS", 600_000, minimum=100),
            retry_base_ms=env_int(env, "VNVS_RETRY_BASE_MS", 200, minimum=0),
            retry_cap_ms=env_int(env, "VNVS_RETRY_CAP_MS", 10_000, minimum=0),
            max_concurrent_requests=env_int(env, "VNVS_MAX_CONCURRENT_REQUESTS", 256, minimum=1),
            recovery_interval_ms=env_int(env, "VNVS_RECOVERY_INTERVAL_MS", 2_000, minimum=50),
            shutdown_grace_ms=env_int(env, "VNVS_SHUTDOWN_GRACE_MS", 10_000, minimum=0),
            max_run_starts=env_int(env, "VNVS_MAX_RUN_STARTS", 5, minimum=1),
            loop_stall_ms=env_int(env, "VNVS_LOOP_STALL_MS", 1_000, minimum=10),
            max_inflight_bytes=env_int(env, "VNVS_MAX_INFLIGHT_BYTES", default_inflight_bytes(
                memory_limit(), hydration, common.payload_max_bytes), minimum=1),
            inline_task_bytes=env_int(env, "VNVS_INLINE_TASK_BYTES", 8_192, minimum=0, maximum=1_048_576),
            request_window=env_int(env, "VNVS_REQUEST_WINDOW", 512, minimum=1, maximum=10_000_000),
        )
