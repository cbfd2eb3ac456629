"""Prometheus metrics of the orchestrator."""

from __future__ import annotations

import time

from prometheus_client import Counter, Gauge, Histogram

REQUESTS_FINISHED = Counter("vnvs_requests_finished_total", "Requests this instance ended, by status.", ["status"])
REQUESTS_RUNNING = Gauge("vnvs_requests_running", "Requests this instance drives now.")
REQUESTS_ADOPTED = Counter("vnvs_requests_adopted_total", "Orphaned requests taken over from a dead instance.")
GROUP_DURATION = Histogram("vnvs_group_duration_seconds", "From dispatch to the last result of a group.",
                           buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800))
TASK_RETRIES = Counter("vnvs_task_retries_total", "Task attempts dispatched again after a failure.")
UPDATE_LAG = Histogram("vnvs_update_lag_seconds", "From a worker's update entering its stream to being read.",
                       buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1, 5))


def observe_update_lag(entry_id: str) -> None:
    """Stream entry ids start with their creation time in ms: the lag needs no extra field."""
    created_ms = int(entry_id.split("-", 1)[0])
    UPDATE_LAG.observe(max(0.0, time.time() - created_ms / 1000))
INFLIGHT_BYTES = Gauge("vnvs_inflight_bytes", "Payload bytes of the requests this instance drives now.")
INFLIGHT_BYTES_PEAK = Gauge("vnvs_inflight_bytes_peak", "The most payload bytes driven at once since start.")
INFLIGHT_BYTES_BUDGET = Gauge("vnvs_inflight_bytes_budget", "VNVS_MAX_INFLIGHT_BYTES: payload bytes admitted at once.")
ADMISSION_DEFERRED = Counter("vnvs_admission_deferred_total",
                             "Orchestrate calls answered ORCHESTRATOR_BUSY: the request waits for room.")
