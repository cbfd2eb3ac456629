"""What the control tests share: scripts that record and hold their processes, cancel calls, waits."""

from __future__ import annotations

import time
from pathlib import Path

import grpc

from tests.e2e.conftest import EXAMPLES
from tests.e2e.helpers import write_script
from tests.vnas.conftest import process_alive
from vn.v1 import valuation_pb2, valuation_pb2_grpc

Api = valuation_pb2_grpc.ValuationServiceStub


def holding_script(directory: Path, log: Path, pids: Path, hold_s: float) -> Path:
    """Logs `request group task attempt` per execution, starts a child that holds for `hold_s` and
    records both pids (script and child: its process group), waits, then prices with the example."""
    return write_script(directory, "hold.sh",
                        f'echo "$VN_REQUEST_ID $VN_GROUP_INDEX $VN_TASK_ID $VN_ATTEMPT" >> "{log}"\n'
                        f'sleep {hold_s} &\n'
                        f'echo "$$ $!" >> "{pids}"\n'
                        f'wait\n'
                        f'exec "{EXAMPLES / "price.py"}" "$1"\n')


def failing_first_script(directory: Path, log: Path) -> Path:
    """Fails every task's first attempt, prices the later ones; logs every execution."""
    return write_script(directory, "flaky.sh",
                        f'echo "$VN_REQUEST_ID $VN_GROUP_INDEX $VN_TASK_ID $VN_ATTEMPT" >> "{log}"\n'
                        'if [ "$VN_ATTEMPT" = 1 ]; then echo "first attempt fails" >&2; exit 3; fi\n'
                        f'exec "{EXAMPLES / "price.py"}" "$1"\n')


def recorded_pids(pids: Path) -> list[int]:
    if not pids.exists():
        return []
    return [int(pid) for line in pids.read_text().splitlines() for pid in line.split()]


def wait_gone(pids: list[int], within_s: float) -> float:
    """Seconds until every pid is gone; AssertionError naming the survivors after `within_s`."""
    started = time.monotonic()
    while any(process_alive(pid) for pid in pids):
        if time.monotonic() - started > within_s:
            raise AssertionError(f"still alive after {within_s}s: {[p for p in pids if process_alive(p)]}")
        time.sleep(0.02)
    return time.monotonic() - started


async def cancel(api: Api, request_id: str) -> valuation_pb2.CancelResponse:
    reply: valuation_pb2.CancelResponse = await api.Cancel(valuation_pb2.CancelRequest(request_id=request_id),
                                                           timeout=10)
    return reply


async def cancel_error(api: Api, request_id: str) -> grpc.aio.AioRpcError:
    try:
        await cancel(api, request_id)
    except grpc.aio.AioRpcError as exc:
        return exc
    raise AssertionError(f"cancel of {request_id!r} was accepted")
