"""What the hostile-script tests share: a real `python -m vnas` (or a whole mesh), one task run through
the dispatch stream, the worker's peak RSS, and the processes alive under a marker, all read from /proc."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis.asyncio as redis

from tests.conftest import wait_until
from tests.vnas.conftest import dispatch, read_updates, write_script
from vn.v1 import streams_pb2
from vncommon.localmesh import LocalMesh, free_port


def service_env(redis_url: str, **env: str) -> dict[str, str]:
    """The test process's environment without mesh settings, plus the test Redis and `env`."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("VN", "REDIS", "HYDRATION", "GRPC", "AWS"))}
    base.update({"REDIS_URL": redis_url, "LOG_LEVEL": "INFO", "DEFAULT_BLOCK_MS": "200",
                 "VNVS_RETRY_BASE_MS": "20", "VNVS_RETRY_CAP_MS": "200", **env})
    return base


@contextmanager
def running(env: dict[str, str], log_dir: Path, whole_mesh: bool = False, vnas_port: int | None = None
            ) -> Iterator[LocalMesh]:
    """One vnas worker (named vnas0), or vnvs + one worker + vnapi, as real processes; stopped afterwards."""
    log_dir.mkdir(exist_ok=True)
    mesh = LocalMesh(env=env, log_dir=log_dir)
    port = vnas_port or free_port()
    try:
        if whole_mesh:
            mesh.start_all(workers=1, gateway=False, vnas_ports=[port])
        else:
            mesh.start("vnas0", "vnas", port)
        yield mesh
    finally:
        mesh.stop()


def worker_pid(mesh: LocalMesh) -> int:
    return mesh.processes["vnas0"].pid


def logs(log_dir: Path) -> str:
    return "\n".join(path.read_text(errors="replace") for path in sorted(log_dir.glob("*.log")))


async def run_task(client: redis.Redis, request_id: str, timeout: float = 30.0) -> tuple[streams_pb2.TaskUpdate, float]:  # noqa: ASYNC109
    """Dispatch one task of `request_id` to the worker; its first update and the seconds it took."""
    started = time.monotonic()
    await dispatch(client, request_id=request_id)

    async def updated() -> bool:
        return bool(await read_updates(client, request_id))

    await wait_until(updated, timeout=timeout)
    return (await read_updates(client, request_id))[0], time.monotonic() - started


def branching_script(directory: Path, cases: dict[str, str], default: str = "    echo 42",
                     variable: str = "VN_REQUEST_ID") -> str:
    """A /bin/sh valuation script running `cases[prefix]` for tasks whose `variable` starts with `prefix`."""
    arms = "".join(f'  {prefix}*)\n{body}\n    ;;\n' for prefix, body in cases.items())
    return write_script(directory, f'case "${variable}" in\n{arms}  *)\n{default}\n    ;;\nesac')


# -- /proc --------------------------------------------------------------------------------------------

def environ_of(pid: int) -> bytes:
    """The environment `pid` started with, as /proc holds it (NUL-separated NAME=value)."""
    with open(f"/proc/{pid}/environ", "rb") as handle:
        return handle.read()


def _stat(pid: int) -> tuple[str, int] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            fields = handle.read().rsplit(b")", 1)[1].split()
    except OSError:
        return None
    return fields[0].decode(), int(fields[1])


def live_with(marker: str) -> list[int]:
    """Pids of live (not zombie) processes whose command line holds `marker`."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as handle:
                cmdline = handle.read()
        except OSError:
            continue
        stat = _stat(int(name))
        if marker.encode() in cmdline and stat is not None and stat[0] not in ("Z", "X"):
            found.append(int(name))
    return found


def children_of(pid: int) -> list[tuple[int, str]]:
    """(pid, state) of every process whose parent is `pid`, zombies included."""
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            stat = _stat(int(name))
            if stat is not None and stat[1] == pid:
                found.append((int(name), stat[0]))
    return found


async def wait_gone(marker: str, timeout: float) -> float:  # noqa: ASYNC109
    """Seconds until no live process holds `marker`; fails the test if some still do after `timeout`."""
    started = time.monotonic()
    while live_with(marker):
        if time.monotonic() - started > timeout:
            raise AssertionError(f"still alive after {timeout}s: {live_with(marker)}")
        await asyncio.sleep(0.05)
    return time.monotonic() - started
