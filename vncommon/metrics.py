"""Serving each service's Prometheus metrics (SPEC section 11) on METRICS_PORT."""

from __future__ import annotations

import logging

from prometheus_client import Gauge, start_http_server

log = logging.getLogger(__name__)

SERVING = Gauge("vn_grpc_serving", "1 while this process's gRPC health reports SERVING, 0 when NOT_SERVING.")


def serve_metrics(port: int | None, host: str) -> None:
    """Expose /metrics from a daemon thread when a port is configured."""
    if port is None:
        return
    start_http_server(port, addr=host)
    log.info("metrics listening", extra={"fields": {"address": f"{host}:{port}"}})
