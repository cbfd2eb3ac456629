"""Prometheus metrics of the gateway, on a registry of its own (one per app, so tests stay isolated)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class GatewayMetrics:
    """HTTP request counts and latency by route, and submissions by mode and outcome."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "vn_gateway_http_requests", "HTTP requests answered", ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "vn_gateway_http_request_seconds", "Time to answer an HTTP request", ["method", "route"],
            buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        self.submissions = Counter(
            "vn_gateway_submissions", "POST /valuation answers", ["mode", "outcome"], registry=self.registry,
        )

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def observe_submission(self, sync: bool, outcome: str) -> None:
        self.submissions.labels("sync" if sync else "async", outcome).inc()

    def render(self) -> bytes:
        data: bytes = generate_latest(self.registry)
        return data
