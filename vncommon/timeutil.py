"""Timestamps as the mesh writes them: ISO 8601 UTC with milliseconds."""

from __future__ import annotations

import time
from datetime import UTC, datetime


def utc_now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_iso(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def utc_now_ms() -> int:
    """Wall-clock epoch milliseconds: deadlines are compared across machines, so not a monotonic clock."""
    return time.time_ns() // 1_000_000
