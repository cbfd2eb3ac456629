"""Memory as the kernel counts it, for the bounds the hostile-input tests assert (Linux /proc)."""

from __future__ import annotations

MIB = 1024 * 1024


def _status(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"/proc/{pid}/status has no {field}")


def reset_peak_rss(pid: int) -> None:
    """Start measuring the peak resident set of `pid` from now (Linux clear_refs, value 5)."""
    with open(f"/proc/{pid}/clear_refs", "w") as handle:
        handle.write("5")


def peak_rss(pid: int) -> int:
    """Bytes: the most `pid` had resident since it started or the last reset (VmHWM), so a short spike
    between two samples cannot hide."""
    return _status(pid, "VmHWM")


def peak_rss_mib(pid: int) -> float:
    return peak_rss(pid) / MIB


def rss(pid: int) -> int:
    return _status(pid, "VmRSS")
