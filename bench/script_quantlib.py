"""script-quantlib: 1,000 QuantLib bond and option tasks, one process per task vs warm (two ways).

Each variant runs on a fresh mesh with one worker. Figures per variant: tasks/s over the 1,000-task
group, worker CPU per task (the vnas process and every process it started), p50/p99 of the task's run
time in the worker (update `duration_ms`), and the pricer's own CPU over worker CPU, two ways: as the
warm processes report it (the handler's CPU time, framed-v1 `cpuMs`, summed by the worker's
`vnas_pricer_cpu_seconds_total`), and as `value()` needs it for the same task documents priced in a loop
in this process (the only figure for one-shot scripts, which report nothing).
"""

from __future__ import annotations

import importlib
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import aiohttp

from bench.quantlib_request import quantlib_request
from bench.stats import CLOCK_TICKS, percentile
from vn.v1 import streams_pb2, valuation_pb2
from vnas import proctree
from vncommon import keys
from vncommon.localmesh import ROOT, free_port
from vncommon.state import Status
from vncommon.streams import from_fields

if TYPE_CHECKING:
    from bench.scenarios import Context

# The pricer under test: a module with `value(task_xml: bytes) -> bytes` that also runs as a valuation script
# (`python -m MODULE`, vncommon.scripthost). Point it at the QuantLib pricer library to measure that instead.
PRICER_MODULE = "bench.quantlib_price"
TASKS = 1000
WARM_UP_TASKS = 20
PRICER_SAMPLE = 200
SCRIPT = str(ROOT / "bench" / "quantlib_price.sh")
SCRIPT_ENV = {"VNAS_SCRIPT": SCRIPT, "VNAS_SCRIPT_ENV": "BENCH_PYTHON,BENCH_PRICER_MODULE",
              "BENCH_PYTHON": sys.executable, "BENCH_PRICER_MODULE": PRICER_MODULE}
WORKERS = 1
IN_FLIGHT = "8"
METRICS_PORT = free_port()
# The same tasks in flight every way; the worker's metrics give the CPU the warm handlers report.
VARIANTS = {
    "oneshot": {**SCRIPT_ENV, "VNAS_CONCURRENCY": IN_FLIGHT},
    "persistent": {**SCRIPT_ENV, "VNAS_SCRIPT_MODE": "persistent", "VNAS_CONCURRENCY": IN_FLIGHT},
    "pool": {"VNAS_EXECUTOR": f"python:{PRICER_MODULE}:value", "VNAS_EXECUTOR_PROCESSES": IN_FLIGHT,
             "VNAS_CONCURRENCY": IN_FLIGHT},
}
for _env in VARIANTS.values():
    _env["VNAS_METRICS_PORT"] = str(METRICS_PORT)


def process_cpu(pid: int, children: bool) -> float:
    """CPU seconds of `pid` (with its waited-for children's when `children`)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = int(fields[11]) + int(fields[12]) + (int(fields[13]) + int(fields[14]) if children else 0)
    return ticks / CLOCK_TICKS


def worker_cpu(ctx: Context) -> tuple[float, float]:
    """(everything, the worker process alone): the vnas processes, what they waited for, and the warm
    processes still running below them."""
    workers = [pid for name, pid in ctx.mesh.pids().items() if name.startswith("vnas")]
    below = proctree.descendants(workers, proctree.snapshot())
    own = sum(process_cpu(pid, False) for pid in workers)
    return sum(process_cpu(pid, True) for pid in workers) + sum(process_cpu(pid, False) for pid in below), own


async def run_request(ctx: Context, tasks: int) -> tuple[str, float, list[int]]:
    """Submit, follow the updates stream to the last task, wait for success: id, seconds, task durations."""
    started = time.perf_counter()
    submitted = await ctx.api.Submit(valuation_pb2.SubmitRequest(xml=quantlib_request(tasks)), timeout=60)
    stream, last, durations, done = keys.updates_stream(submitted.request_id), "0-0", [], set()
    finished = started
    while len(done) < tasks:
        replies = await ctx.redis.xread({stream: last}, count=1000, block=5000)
        if not replies:
            raise RuntimeError(f"no task update for 5 s ({len(done)} of {tasks} done)")
        for entry_id, fields in replies[0][1]:
            last = entry_id
            update = from_fields(streams_pb2.TaskUpdate, fields)
            if update.status != "completed":
                raise RuntimeError(f"task {update.task_id} failed: {update.error}")
            if update.task_id not in done:
                done.add(update.task_id)
                durations.append(update.duration_ms)
        finished = time.perf_counter()
    watch = ctx.api.Watch(valuation_pb2.WatchRequest(request_id=submitted.request_id), timeout=120)
    statuses = [reply.event.status async for reply in watch]
    if statuses[-1:] != [Status.SUCCEEDED]:
        raise RuntimeError(f"the request ended {statuses[-1:]}")
    return submitted.request_id, finished - started, durations


async def task_documents(ctx: Context, request_id: str, count: int) -> list[bytes]:
    """The first `count` task documents of the request's first group as the workers got them: in the
    dispatch entry (small ones, VNVS_INLINE_TASK_BYTES) or in the key the entry names."""
    found: list[bytes] = []
    stream = keys.dispatch_stream(request_id, 1)
    for _, fields in await ctx.redis.xrange(stream):
        dispatch = from_fields(streams_pb2.TaskDispatch, fields)
        if dispatch.request_id != request_id or dispatch.group_index != 0:
            continue
        document = dispatch.payload.encode() if dispatch.payload else await ctx.redis.get(dispatch.payload_key)
        if document is None:
            raise RuntimeError(f"task {dispatch.task_id}'s document is gone")
        found.append(document)
        if len(found) == count:
            return found
    raise RuntimeError(f"found {len(found)} of {count} task documents of {request_id} in {stream}")


async def pricer_cpu_per_task(ctx: Context, request_id: str) -> float:
    """CPU seconds the pricer itself needs per task: the same task documents, priced in this process."""
    value: Callable[[bytes], bytes] = importlib.import_module(PRICER_MODULE).value
    documents = await task_documents(ctx, request_id, PRICER_SAMPLE)
    value(documents[0])  # first-call set-up is not per task
    started = time.process_time()
    for document in documents:
        value(document)
    return (time.process_time() - started) / len(documents)


async def reported_pricer_cpu() -> float:
    """vnas_pricer_cpu_seconds_total of the worker: what its warm processes said their handler used."""
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{METRICS_PORT}/metrics") as response:
        text = await response.text()
    for line in text.splitlines():
        if line.startswith("vnas_pricer_cpu_seconds_total "):
            return float(line.split()[1])
    return 0.0


async def script_quantlib(ctx: Context) -> None:
    await run_request(ctx, WARM_UP_TASKS)
    (before, own_before), reported_before = worker_cpu(ctx), await reported_pricer_cpu()
    request_id, seconds, durations = await run_request(ctx, TASKS)
    after, own_after = worker_cpu(ctx)
    cpu = (after - before) / TASKS
    reported = (await reported_pricer_cpu() - reported_before) / TASKS
    looped = await pricer_cpu_per_task(ctx, request_id)
    ctx.figures.update({
        "tasks_per_s": TASKS / seconds, "worker_cpu_ms_per_task": cpu * 1000,
        "worker_process_cpu_ms_per_task": (own_after - own_before) / TASKS * 1000,
        "task_p50_ms": percentile(durations, 50), "task_p99_ms": percentile(durations, 99),
        "pricer_cpu_ms_per_task_reported": reported * 1000, "pricer_cpu_ms_per_task_looped": looped * 1000,
        "pricer_cpu_share_reported": reported / cpu if cpu else float("nan"),
        "pricer_cpu_share_looped": looped / cpu if cpu else float("nan"),
        "tasks": float(TASKS + WARM_UP_TASKS)})


def combine(results: dict[str, dict[str, float]]) -> dict[str, float]:
    """The warm variants' throughput as a multiple of one process per task."""
    if "oneshot" not in results:
        return {}
    base = results["oneshot"]
    return {figure: results[name][key] / base[key] if invert else base[key] / results[name][key]
            for name in ("persistent", "pool") if name in results
            for figure, key, invert in ((f"{name}_speedup", "tasks_per_s", True),
                                        (f"{name}_cpu_saving", "worker_cpu_ms_per_task", False))}
