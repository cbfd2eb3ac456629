"""Bounds on what an executor returns: the result is capped while it is read, stderr keeps only its tail.

A result that passes `VNAS_MAX_RESULT_BYTES` is refused before it is stored: every stored result must be
fetchable again through gRPC, whose messages are capped at `PAYLOAD_MAX_BYTES` plus framing. The script's
stdout is read into a `BoundedOutput` that never asks for more than one byte past the limit, so a script
printing gigabytes costs the worker the limit, not the gigabytes.
"""

from __future__ import annotations

# Reads ask for at most this much at a time (the pipe buffer is 64 KiB on Linux).
READ_CHUNK_BYTES = 64 * 1024


class ResultTooLarge(Exception):
    """The executor produced more than VNAS_MAX_RESULT_BYTES; the message is the attempt's error."""

    def __init__(self, limit: int, size: int | None = None) -> None:
        measured = f" ({size} bytes)" if size is not None else ""
        super().__init__(f"result exceeds VNAS_MAX_RESULT_BYTES={limit} bytes{measured}")
        self.limit = limit


def check_size(result: bytes, limit: int) -> bytes:
    """`result` unchanged if it fits in `limit` bytes, else ResultTooLarge."""
    if len(result) > limit:
        raise ResultTooLarge(limit, len(result))
    return result


class BoundedOutput:
    """stdout of a script: at most `limit` bytes are kept; the first byte past it raises ResultTooLarge."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.overflowed = False
        self._data = bytearray()

    def room(self) -> int:
        """How much the next read may ask for: one byte past the limit is enough to know it is over."""
        return min(READ_CHUNK_BYTES, self.limit + 1 - len(self._data))

    def add(self, chunk: bytes) -> None:
        self._data += chunk
        if len(self._data) > self.limit:
            self.overflowed = True
            self._data = bytearray()  # the output is refused: free it now, not when the run ends
            raise ResultTooLarge(self.limit)

    def value(self) -> bytes:
        return bytes(self._data)


class TailBuffer:
    """stderr of a script: only the last `keep` bytes are kept, however much it writes."""

    def __init__(self, keep: int) -> None:
        self.keep = keep
        self._data = bytearray()

    def room(self) -> int:
        return READ_CHUNK_BYTES

    def add(self, chunk: bytes) -> None:
        self._data += chunk
        if len(self._data) > 2 * self.keep:  # trim in batches, not on every read
            del self._data[:-self.keep]

    def value(self) -> bytes:
        return bytes(self._data[-self.keep:])

    def clear(self) -> None:
        """Forget what was kept (a warm process starts each task with an empty tail)."""
        self._data = bytearray()
