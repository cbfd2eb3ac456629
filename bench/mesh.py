"""A private redis-server and a local mesh for one benchmark scenario."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from vncommon.localmesh import ROOT, LocalMesh, free_port, start_redis, stop_processes

NOOP_EXECUTOR = "python:bench.noop:price"
SHELL_SCRIPT = str(ROOT / "bench" / "price.sh")


@contextmanager
def private_redis() -> Iterator[str]:
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="vn-bench-redis-") as workdir:
        process = start_redis(workdir, port)
        try:
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            stop_processes([process])


@contextmanager
def bench_mesh(redis_url: str, workers: int = 2, **env: str) -> Iterator[LocalMesh]:
    """The mesh `make run` starts, with its defaults, on the in-process no-op executor; `env` and
    BENCH_CONCURRENCY (VNAS_CONCURRENCY) override them for a scenario that measures a knob."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("VN", "REDIS", "HYDRATION", "GRPC"))}
    base.update({"REDIS_URL": redis_url, "LOG_LEVEL": "WARNING", "VNAS_EXECUTOR": NOOP_EXECUTOR})
    if os.environ.get("BENCH_CONCURRENCY"):
        base["VNAS_CONCURRENCY"] = os.environ["BENCH_CONCURRENCY"]
    base.update(env)
    if "VNAS_SCRIPT" in env:
        base.pop("VNAS_EXECUTOR")
    with tempfile.TemporaryDirectory(prefix="vn-bench-logs-") as logs:
        mesh = LocalMesh(env=base, log_dir=Path(logs))
        try:
            mesh.start_all(workers=workers)
            yield mesh
        finally:
            mesh.stop()
