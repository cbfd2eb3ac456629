"""Handing large buffers back to the system as soon as they are freed.

glibc serves allocations above its mmap threshold with their own mappings, returned to the kernel on
free; but the threshold rises to the size of every such block freed (up to 32 MiB), after which 10 MiB
bodies, documents and replies come from the heap and their pages stay resident after use. A service
that moves payloads of several MiB would then keep its worst moment's RSS forever. Fixing the threshold
keeps the resident size close to what is live. Elsewhere than glibc this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_MMAP_THRESHOLD = -3  # from glibc's malloc.h
MMAP_THRESHOLD_BYTES = 1024 * 1024


def release_large_buffers() -> bool:
    """Pin the mmap threshold at MMAP_THRESHOLD_BYTES; True when the C library took it."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        return bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))
    except (OSError, AttributeError):
        return False
