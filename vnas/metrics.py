"""Prometheus metrics of the task workers, served on VNAS_METRICS_PORT when it is set."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

from vncommon.state import task_status

TASK_DURATION = Histogram(
    "vnas_task_duration_seconds",
    "Time from reading a task's payload to its outcome, by outcome.",
    ["outcome"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
)
TASK_OUTCOMES = Counter("vnas_task_outcomes_total", "Task attempts settled, by outcome.", ["outcome"])
TASKS_IN_FLIGHT = Gauge("vnas_tasks_in_flight", "Tasks this worker is running now.")
# Reasons of TASKS_SKIPPED: skipped before it ran, or stopped while it ran.
SKIPPED_QUEUED = "cancelled"
SKIPPED_RUNNING = "cancelled_running"
TASKS_SKIPPED = Counter("vnas_tasks_skipped_total",
                        "Tasks of cancelled requests acknowledged without running, or stopped while running.",
                        ["reason"])
TASKS_RECLAIMED = Counter("vnas_tasks_reclaimed_total", "Entries taken over from idle consumers (XAUTOCLAIM).")
WARM_PROCESSES_STARTED = Counter("vnas_warm_processes_started_total",
                                 "Warm processes started (persistent scripts, pool processes): first use and "
                                 "every replacement.")
PRICER_CPU = Counter("vnas_pricer_cpu_seconds_total",
                     "CPU that warm processes report their handler used on tasks (framed-v1 cpuMs).")
REDIS_ERRORS = Counter("vnas_redis_errors_total", "Redis errors the worker backed off from, by operation.",
                       ["operation"])


def observe_outcome(completed: bool, duration_ms: int) -> None:
    outcome = task_status(completed)
    TASK_OUTCOMES.labels(outcome).inc()
    TASK_DURATION.labels(outcome).observe(duration_ms / 1000)


def serve_metrics(port: int, host: str) -> None:
    """Expose /metrics over HTTP from a daemon thread."""
    start_http_server(port, addr=host)
