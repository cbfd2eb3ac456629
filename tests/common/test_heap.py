"""Large buffers go back to the system when freed, so a service's resident size follows what is live."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import resource, sys
from vncommon.heap import release_large_buffers
assert release_large_buffers()
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()
base = rss()
keep = []
for _ in range(10):
    body = bytes(10 * 1024 * 1024)
    keep.append(bytes(1000))  # something small and live allocated after it, as a service always has
    del body
print(rss() - base)
"""


def test_freed_large_buffers_do_not_stay_resident() -> None:
    grown = int(subprocess.run([sys.executable, "-c", PROBE], capture_output=True, check=True, text=True).stdout)
    assert grown < 4 * 1024 * 1024, f"{grown} bytes stayed resident after freeing ten 10 MiB bodies"
