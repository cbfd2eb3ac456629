"""Prometheus metrics of the intake service."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

SUBMISSIONS = Counter("vnapi_submissions_total", "Submit calls, by mode (sync/async) and outcome.",
                      ["mode", "outcome"])
SYNC_LATENCY = Histogram("vnapi_sync_submit_seconds", "Sync Submit latency, from call to answer.",
                         buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120))
INGEST_LAG = Histogram("vnapi_ingest_lag_seconds", "From an ingest entry being added to vnvs accepting it.",
                       buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1, 5, 30))
LIFECYCLE_STREAMS_READ = Gauge("vnapi_lifecycle_streams_read",
                               "Lifecycle streams the hub reads now: its home shard's and those of requests "
                               "watched here that were made elsewhere.")
