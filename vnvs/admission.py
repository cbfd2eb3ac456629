"""Admission by bytes: how much request payload one vnvs instance drives at once (VNVS_MAX_INFLIGHT_BYTES).

A request is admitted when its stored XML fits beside the requests already running; one that does not
fit is answered ORCHESTRATOR_BUSY and waits in the ingest stream for this or another instance. One
larger than the whole budget could never fit and fails with REQUEST_OVER_BUDGET (see docs/architecture.md).

The default budget follows the memory the instance may use: the cgroup v2 or v1 limit of its container,
else the machine's memory; minus what the process itself and its hydration workers may hold; divided by
the memory one request costs per payload byte; never less than one request of PAYLOAD_MAX_BYTES.
"""

from __future__ import annotations

import os
from pathlib import Path

from vnvs.hydration.settings import HydrationSettings

MIB = 1024 * 1024
# Memory a running request holds in vnvs per byte of its payload, at most (measured: docs/performance.md).
MEMORY_FACTOR = 8
# The vnvs process itself: interpreter, gRPC, lxml, the Redis pool, before any request.
PROCESS_RESERVE_BYTES = 512 * MIB
# A cgroup v1 "no limit" is a huge number rather than a word.
_UNLIMITED_V1 = 1 << 60
CGROUP_ROOT = Path("/sys/fs/cgroup")


def _read_limit(path: Path) -> int | None:
    try:
        raw = path.read_text().strip()
    except OSError:
        return None
    if not raw.isdigit():
        return None  # "max": no limit at this level
    value = int(raw)
    return value if value < _UNLIMITED_V1 else None


def _own_cgroup_v2() -> Path | None:
    try:
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            if line.startswith("0::"):
                return CGROUP_ROOT / line[3:].lstrip("/")
    except OSError:
        return None
    return None


def memory_limit() -> int:
    """Bytes this process may use: the tightest cgroup limit found (v2, then v1), else the machine's memory."""
    machine = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    candidates = [CGROUP_ROOT / "memory.max", CGROUP_ROOT / "memory" / "memory.limit_in_bytes"]
    own = _own_cgroup_v2()
    if own is not None:
        candidates.insert(0, own / "memory.max")
    limits = [limit for limit in map(_read_limit, candidates) if limit is not None]
    return min([machine, *limits])


def default_inflight_bytes(memory_bytes: int, hydration: HydrationSettings, payload_max_bytes: int) -> int:
    """(memory - process reserve - hydration workers' limits) / MEMORY_FACTOR, at least one largest request."""
    workers = hydration.processes * hydration.max_memory_bytes
    return max(payload_max_bytes, (memory_bytes - PROCESS_RESERVE_BYTES - workers) // MEMORY_FACTOR)


class Admission:
    """The payload bytes of the requests this instance drives, against its budget."""

    def __init__(self, budget_bytes: int) -> None:
        self.budget = budget_bytes
        self.peak = 0
        self._held: dict[str, int] = {}

    @property
    def in_flight(self) -> int:
        return sum(self._held.values())

    def too_large(self, size: int) -> bool:
        """True for a request that could never fit, even alone."""
        return size > self.budget

    def fits(self, size: int) -> bool:
        return self.in_flight + size <= self.budget

    def hold(self, request_id: str, size: int) -> None:
        self._held[request_id] = size
        self.peak = max(self.peak, self.in_flight)

    def release(self, request_id: str) -> None:
        self._held.pop(request_id, None)
