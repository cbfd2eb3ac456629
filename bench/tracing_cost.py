"""`make bench SCENARIO=tracing-cost`: the mesh's CPU per 2 x 10 request with tracing off and on, at the
same request rate.

`concurrent-2x10` runs closed-loop, so a variant that is slower also does less per second: its fixed
costs (idle reads, timers) are shared by fewer requests and its batches are smaller, which inflates its
CPU per request beyond what tracing itself adds. Here both variants get `BENCH_RATE` requests/s (default
15, below what this mesh sustains on 2 cores with tracing on) from 20 sync clients, in interleaved rounds
(off, on, off, on), and tracing exports over OTLP/gRPC to a receiver in the benchmark's own process that
drops what it gets (a collector's CPU is not the mesh's). Every trace is sampled.
"""

from __future__ import annotations

import os
import statistics
from typing import TYPE_CHECKING

from bench.otlp_sink import start_sink
from vncommon.localmesh import free_port

if TYPE_CHECKING:
    from bench.scenarios import Context

RATE = float(os.environ.get("BENCH_RATE", "15"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "2"))
SINK_PORT = free_port()
TRACING_ON = {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{SINK_PORT}"}
VARIANTS = {f"{mode}{index}": (TRACING_ON if mode == "on" else {})
            for index in range(1, ROUNDS + 1) for mode in ("off", "on")}


async def paced_2x10(ctx: Context) -> None:
    from bench.scenarios import concurrent_2x10

    server, sink = await start_sink(SINK_PORT, keep=False)
    try:
        await concurrent_2x10(ctx, rate=RATE)
    finally:
        await server.stop(1)
    ctx.figures["spans_received"] = float(sink.count)


def combine(results: dict[str, dict[str, float]]) -> dict[str, float]:
    """Medians over the rounds, and what tracing on adds to the CPU per request."""
    figures: dict[str, float] = {}
    for mode in ("off", "on"):
        runs = [found["cpu_ms_per_request"] for name, found in results.items() if name.startswith(mode)]
        if runs:
            figures[f"{mode}_cpu_ms_per_request"] = statistics.median(runs)
    if "off_cpu_ms_per_request" in figures and "on_cpu_ms_per_request" in figures:
        figures["on_added_percent"] = 100 * (figures["on_cpu_ms_per_request"] / figures["off_cpu_ms_per_request"] - 1)
    return figures
