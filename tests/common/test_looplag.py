"""The event-loop lag monitor: it sees a held loop, remembers the worst lateness, and exports both."""

from __future__ import annotations

import asyncio
import time

from prometheus_client import CollectorRegistry, generate_latest

from vncommon.looplag import LoopLagMonitor, export_lag


async def test_a_held_loop_shows_as_lag_now_and_as_the_worst_since_start() -> None:
    monitor = LoopLagMonitor(stall_s=0.2)
    registry = CollectorRegistry()
    export_lag("svc", monitor, registry)
    ticking = asyncio.create_task(monitor.run())
    await asyncio.sleep(0.25)
    time.sleep(0.4)  # noqa: ASYNC251  # hold the loop
    await asyncio.sleep(0.25)
    monitor.stop()
    await asyncio.wait_for(ticking, 2)
    assert monitor.max_lag >= 0.3 and monitor.worst_lag() >= 0.3
    assert monitor.stalled
    lines = {line.split()[0]: float(line.split()[1]) for line in generate_latest(registry).decode().splitlines()
             if line and not line.startswith("#")}
    assert lines["svc_event_loop_lag_max_seconds"] >= 0.3
    assert "svc_event_loop_lag_seconds" in lines


def test_exporting_twice_rebinds_the_gauges_to_the_newer_monitor() -> None:
    registry = CollectorRegistry()
    first, second = LoopLagMonitor(1.0), LoopLagMonitor(1.0)
    export_lag("again", first, registry)
    export_lag("again", second, registry)
    second.max_lag = 7.0
    assert b"again_event_loop_lag_max_seconds 7.0" in generate_latest(registry)
