"""The one service runner (vncommon.service): its steps in order, a crashed loop, a taken port, SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.conftest import ROOT, RedisServer
from vncommon.localmesh import free_port, wait_for_port
from vncommon.service import EXIT_BIND, EXIT_CONFIG, EXIT_OK, Loop, Service, serve


class RecordingService(Service):
    """A service whose steps write down when they ran; its one loop ends once fetching stopped."""

    name = "recording"

    def __init__(self, crash: bool = False) -> None:
        self.steps: list[str] = []
        self._crash = crash
        self._fetching = asyncio.Event()

    async def bind(self) -> str:
        self.steps.append("bind")
        return "127.0.0.1:1"

    async def start(self) -> None:
        self.steps.append("start")

    async def set_serving(self, serving: bool) -> None:
        self.steps.append("serving" if serving else "not serving")

    def loops(self) -> dict[str, Loop]:
        return {"work": self._work()}

    async def _work(self) -> None:
        self.steps.append("loop running")
        if self._crash:
            raise RuntimeError("the loop broke")
        await self._fetching.wait()
        self.steps.append("loop ended")

    def stop_fetching(self) -> None:
        self.steps.append("stop fetching")
        self._fetching.set()

    async def drain(self, grace_s: float) -> None:
        self.steps.append("drain")

    async def hand_back(self) -> None:
        self.steps.append("hand back")

    async def close(self) -> None:
        self.steps.append("close")


async def test_the_runner_starts_then_stops_in_the_documented_order() -> None:
    service, stop, started = RecordingService(), asyncio.Event(), asyncio.Event()
    running = asyncio.create_task(serve(service, stop, started))
    await asyncio.wait_for(started.wait(), 5)
    await asyncio.sleep(0)  # let the loop begin
    stop.set()
    assert await asyncio.wait_for(running, 5) == EXIT_OK
    assert service.steps[:4] == ["bind", "start", "serving", "loop running"]
    stopping = service.steps[4:]
    assert stopping.index("not serving") < stopping.index("stop fetching") < stopping.index("drain")
    assert stopping.index("drain") < stopping.index("hand back") < stopping.index("close")
    assert "loop ended" in stopping and stopping[-1] == "close"


async def test_a_crashed_loop_stops_the_service_loudly_and_still_closes_it() -> None:
    service = RecordingService(crash=True)
    with pytest.raises(ExceptionGroup) as caught:
        await asyncio.wait_for(serve(service, asyncio.Event()), 5)
    assert "the loop broke" in str(caught.value.exceptions[0])
    assert service.steps[-1] == "close"


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 0)
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


def _environment(redis_url: str, **values: str) -> dict[str, str]:
    return {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "REDIS_URL": redis_url, "LOG_LEVEL": "WARNING",
            "VNAS_SCRIPT": str(ROOT / "examples" / "price.py"), **values}


@pytest.mark.parametrize(("module", "port_variable"), [
    ("vnapi", "GRPC_PORT"), ("vnvs", "GRPC_PORT"), ("vnas", "GRPC_PORT"), ("gateway", "HTTP_PORT"),
])
def test_a_taken_port_exits_with_the_bind_code_and_one_line(
    redis_server: RedisServer, taken_port: int, module: str, port_variable: str
) -> None:
    env = _environment(redis_server.url, **{port_variable: str(taken_port)})
    done = subprocess.run([sys.executable, "-m", module], env=env, capture_output=True, timeout=30, cwd=ROOT)
    assert done.returncode == EXIT_BIND, done.stderr
    assert b"Traceback" not in done.stderr
    assert f"cannot listen on 127.0.0.1:{taken_port}".encode() in done.stderr


async def test_sigterm_ends_the_wait_for_an_unreachable_redis_at_once() -> None:
    env = _environment(f"redis://127.0.0.1:{free_port()}/0", GRPC_PORT="0")
    process = await asyncio.create_subprocess_exec(sys.executable, "-m", "vnvs", env=env, cwd=ROOT,
                                                   stderr=subprocess.PIPE)
    assert process.stderr is not None
    # The first retry warning says the process is waiting for Redis.
    line = await asyncio.wait_for(process.stderr.readline(), 20)
    assert b"redis not reachable" in line
    process.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(process.wait(), 5) == EXIT_OK


@pytest.mark.parametrize("value", ["eighty", "70000"])
def test_vn_run_refuses_a_bad_http_port_with_the_config_code_naming_it(value: str) -> None:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "HTTP_PORT": value}
    done = subprocess.run([sys.executable, "-m", "vncommon.launcher"], env=env, capture_output=True, timeout=30,
                          cwd=ROOT)
    assert done.returncode == EXIT_CONFIG
    assert f"HTTP_PORT={value!r}".encode() in done.stderr and b"Traceback" not in done.stderr


def test_a_second_grpc_service_on_a_port_another_one_serves_exits_with_the_bind_code(
    redis_server: RedisServer
) -> None:
    # gRPC would share a port between servers (SO_REUSEPORT) unless told not to.
    port = free_port()
    env = _environment(redis_server.url, GRPC_PORT=str(port))
    first = subprocess.Popen([sys.executable, "-m", "vnas"], env=env, cwd=ROOT, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, first, "vnas")
        done = subprocess.run([sys.executable, "-m", "vnvs"], env=env, capture_output=True, timeout=30, cwd=ROOT)
        assert done.returncode == EXIT_BIND, done.stderr
        assert f"cannot listen on 127.0.0.1:{port}".encode() in done.stderr
    finally:
        first.terminate()
        first.wait(timeout=20)
